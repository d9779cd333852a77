"""The two OoD training objectives of stage 1.

Targets are train-id maps: 0..C-1 in-distribution classes, `ood_id` (254) for OoD pixels, anything else
(255) void.
"""
import torch
import torch.nn.functional as F

from src.dataset.listing import OOD_TRAIN_ID as OOD_ID


def entropy_loss(logits, target, alpha, ood_id=OOD_ID):
    """Soft-target cross entropy that maximises softmax entropy on OoD pixels (the published objective).

    The target distribution is (1 - alpha) one-hot on an in-distribution pixel, alpha / C on every class
    of an OoD pixel and 0 on a void pixel; the loss is the mean over batch, classes and pixels of
    target * (-log_softmax). Written without building the (N, C, H, W) target tensor.

    logits: (N, C, H, W) float; target: (N, H, W) int64. Returns a scalar.
    """
    num_classes = logits.shape[1]
    nll = -F.log_softmax(logits.float(), dim=1)
    inside = target < num_classes
    in_nll = nll.gather(1, torch.where(inside, target, 0).unsqueeze(1)).squeeze(1)
    in_term = (1 - alpha) * (in_nll * inside).sum()
    ood_term = alpha / num_classes * (nll.sum(1) * (target == ood_id)).sum()
    return (in_term + ood_term) / nll.numel()


def logit_loss(logits, target, alpha, ood_id=OOD_ID):
    """Max-logit objective (the seed's variant for SML): raise the max logit on in-distribution pixels
    (weight 1 - alpha), lower it on OoD pixels (weight -alpha); void pixels weigh 0.

    Unbounded below, so the training loop guards against diverging logits.
    logits: (N, C, H, W) float; target: (N, H, W) int64. Returns a scalar: -mean(max logit * weight).
    """
    num_classes = logits.shape[1]
    weight = torch.zeros(target.shape, dtype=torch.float32, device=target.device)
    weight[target < num_classes] = 1 - alpha
    weight[target == ood_id] = -alpha
    return -(logits.float().amax(1) * weight).mean()


LOSSES = {"entropy": entropy_loss, "logit": logit_loss}
