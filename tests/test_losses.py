import numpy as np
import pytest
import torch

from src.losses import OOD_ID, entropy_loss, logit_loss


def random_batch(seed, n=2, c=5, h=4, w=6):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 3
    target = torch.randint(0, c, (n, h, w), generator=g)
    mask = torch.rand(n, h, w, generator=g)
    target[mask < 0.3] = OOD_ID
    target[mask > 0.85] = 255
    return logits, target


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
def test_entropy_loss_equals_the_per_pixel_soft_target_formula(alpha):
    logits, target = random_batch(0)
    n, c, h, w = logits.shape
    p = torch.softmax(logits.double(), 1).numpy()
    total = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = int(target[i, y, x])
                soft = np.zeros(c)
                if t < c:
                    soft[t] = 1 - alpha
                elif t == OOD_ID:
                    soft[:] = alpha / c
                total += -(soft * np.log(p[i, :, y, x])).sum()
    expected = total / (n * c * h * w)
    assert entropy_loss(logits, target, alpha).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9])
def test_logit_loss_equals_the_per_pixel_formula(alpha):
    logits, target = random_batch(1)
    n, c, h, w = logits.shape
    total = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                t = int(target[i, y, x])
                weight = 1 - alpha if t < c else -alpha if t == OOD_ID else 0.0
                total += float(logits[i, :, y, x].max()) * weight
    assert logit_loss(logits, target, alpha).item() == pytest.approx(-total / (n * h * w), rel=1e-5)


def test_void_pixels_contribute_nothing():
    logits, target = random_batch(2)
    void = target == 255
    changed = logits.clone()
    changed[void.unsqueeze(1).expand_as(logits)] += 50.0
    for loss in (entropy_loss, logit_loss):
        assert loss(changed, target, 0.7).item() == pytest.approx(loss(logits, target, 0.7).item(), rel=1e-6)


def test_entropy_training_makes_ood_pixels_uniform_and_keeps_in_distribution_accuracy():
    torch.manual_seed(0)
    c = 4
    # Pixels of class k carry feature e_k; OoD pixels carry a feature the classes never show.
    features = torch.zeros(1, 5, 8, 8)
    target = torch.randint(0, c, (1, 8, 8))
    target[:, 2:5, 2:5] = OOD_ID
    for k in range(c):
        features[0, k][target[0] == k] = 1.0
    features[0, 4][target[0] == OOD_ID] = 1.0
    net = torch.nn.Sequential(torch.nn.Conv2d(5, 16, 1), torch.nn.ReLU(), torch.nn.Conv2d(16, c, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)

    @torch.no_grad()
    def ood_entropy():
        p = torch.softmax(net(features), 1)[0][:, target[0] == OOD_ID]
        return float((-(p * p.log()).sum(0) / np.log(c)).mean())

    # Start from a network that is confident on the OoD pixels (it calls them class 0), as a
    # Cityscapes-trained one is on unknown objects.
    confident_target = torch.where(target == OOD_ID, 0, target)
    for _ in range(60):
        optimizer.zero_grad()
        entropy_loss(net(features), confident_target, alpha=0.0).backward()
        optimizer.step()
    before = ood_entropy()
    for _ in range(100):
        optimizer.zero_grad()
        entropy_loss(net(features), target, alpha=0.9).backward()
        optimizer.step()
    inside = target[0] < c
    accuracy = float((net(features).argmax(1)[0][inside] == target[0][inside]).float().mean())
    assert before < 0.3 and ood_entropy() > 0.98
    assert accuracy == 1.0
