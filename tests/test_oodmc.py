import math
import pickle

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from src.errors import UserError
from src.model import build_model
from src.model.deeplab import upsample
from src.oodmc.moments import StreamingMoments, moment_features, num_features
from src.oodmc.sampling import OODMC_MODELS, UpsampledPixels, mc_dropout, mc_dropout_batches
from src.oodmc.svm import (decision_map, draw_training_pixels, fit_svm, hard_decision_counts, hard_decision_metrics,
                           load_svm, save_svm)

NUM_CLASSES = 4


class PlainNet(nn.Module):
    """conv-BN-ReLU at stride 2, Dropout2d, conv-BN-ReLU, classifier, bilinear upsampling to the input
    size; records every call's batch size."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():  # the same weights every time, the caller's random stream untouched
            torch.manual_seed(0)
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            self.dropout = nn.Dropout2d(0.3)
            self.head = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, NUM_CLASSES, 1))
            for bn in (self.stem[1], self.head[1]):  # non-trivial running statistics
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
        self.calls = []

    def forward(self, x):
        self.calls.append(("forward", len(x)))
        return upsample(self.head(self.dropout(self.stem(x))), x.shape[-2:])


class SplitNet(PlainNet):
    """The same network (same weights) with the MC-dropout split: the prefix ends before the dropout."""

    def mc_prefix(self, x):
        self.calls.append(("prefix", len(x)))
        return (self.stem(x),)

    def mc_suffix(self, prefix, out_size):
        self.calls.append(("suffix", len(prefix[0])))
        logits = self.head(self.dropout(prefix[0]))
        return logits if out_size is None else upsample(logits, out_size)


class NoDropoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.0),
                                 nn.Conv2d(8, NUM_CLASSES, 1))

    def forward(self, x):
        return self.net(x)


class DeadDropoutNet(nn.Module):
    """Like DualGCNNet_res50: the only dropout sits in an auxiliary branch that forward discards."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Conv2d(3, 8, 3, padding=1)
        self.dsn = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(8, NUM_CLASSES, 1))
        self.head = nn.Conv2d(8, NUM_CLASSES, 1)

    def forward(self, x):
        features = self.trunk(x)
        self.dsn(features)
        return self.head(features)


def image(h=6, w=7, seed=1):
    return torch.randn(3, h, w, generator=torch.Generator().manual_seed(seed))


def stored_samples(model, x, num_samples, batch_size, seed, reuse_prefix=True):
    """All samples at the image's size, (N, C, H, W) float64."""
    with torch.no_grad(), mc_dropout(model, seed, x.device):
        batches = [upsample(b, x.shape[-2:]) for b in mc_dropout_batches(model, x, num_samples, batch_size, reuse_prefix)]
    return torch.cat(batches).double().numpy()


def reference_features(samples, order, weight, source):
    """Two-pass float64 numpy features of stored (N, C, H, W) logits, channel 1 + (k - 1) * C + c."""
    probs = np.exp(samples - samples.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    values = probs if source == "softmax" else samples
    mean = values.mean(0)
    mean_probs = probs.mean(0)
    features = np.zeros((1 + samples.shape[1] * order,) + samples.shape[2:])
    features[0] = (1 - weight) * -(mean_probs * np.log(mean_probs)).sum(0)
    for c in range(samples.shape[1]):
        features[1 + c] = weight * mean[c]
        for k in range(2, order + 1):
            features[1 + (k - 1) * samples.shape[1] + c] = weight * ((values[:, c] - mean[c]) ** k).mean(0)
    return features, values


def assert_moments_close(features, reference, values, order, weight, rtol):
    """Relative agreement, moment k measured against its natural scale std^k (odd moments can be 0)."""
    c = (reference.shape[0] - 1) // order
    std = values.std(0)
    assert np.allclose(features[0], reference[0], rtol=rtol, atol=0)
    for k in range(1, order + 1):
        block = slice(1 + (k - 1) * c, 1 + k * c)
        scale = weight * (np.abs(values.mean(0)) + std if k == 1 else std ** k)
        error = np.abs(features[block] - reference[block])
        assert (error <= rtol * (np.abs(reference[block]) + scale)).all(), f"order {k}: {error.max()}"


@pytest.mark.parametrize("source, batch_size", [("logits", 4), ("softmax", 4), ("logits", 1)])
def test_streaming_features_equal_numpy_moments_of_the_stored_samples(source, batch_size):
    model, x = SplitNet(), image()
    samples = stored_samples(model, x, num_samples=11, batch_size=batch_size, seed=5)
    reference, values = reference_features(samples, order=4, weight=0.3, source=source)
    features = moment_features(model, x, num_samples=11, batch_size=batch_size, order=4, weight=0.3, source=source,
                               seed=5, chunk_bytes=2000)  # tiny chunks: the update runs a few pixels at a time
    assert features.shape == (num_features(NUM_CLASSES, 4), 6, 7) == reference.shape
    assert_moments_close(features.numpy(), reference, values, order=4, weight=0.3, rtol=1e-5)


@pytest.mark.parametrize("in_size, out_size", [((3, 4), (6, 7)), ((5, 9), (17, 33)), ((8, 8), (64, 64)),
                                               ((1, 5), (4, 20)), ((4, 6), (1, 1)), ((6, 7), (6, 7))])
def test_upsampled_pixels_equal_f_interpolate_in_any_pixel_ranges(in_size, out_size):
    logits = torch.randn(3, 2, *in_size, generator=torch.Generator().manual_seed(0)) * 5
    expected = upsample(logits, out_size).flatten(2)
    upsampled = UpsampledPixels(in_size, out_size)
    bounds = sorted({0, upsampled.num_pixels, *np.random.default_rng(0).integers(0, upsampled.num_pixels, 3)})
    got = torch.cat([upsampled(logits, a, b) for a, b in zip(bounds[:-1], bounds[1:])], dim=2)
    assert upsampled.num_pixels == out_size[0] * out_size[1]
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6)
    pixels = np.random.default_rng(1).permutation(upsampled.num_pixels)[:5]
    subset = UpsampledPixels(in_size, out_size, pixels)
    assert torch.allclose(subset(logits, 1, 5), expected[:, :, pixels[1:5]], rtol=1e-6, atol=1e-6)


def test_streaming_moments_stay_accurate_far_from_zero():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(40, 3, 500)) * rng.uniform(0.2, 2, size=(3, 500)) + rng.normal(size=(3, 500)) * 8
    samples = samples.astype(np.float32)
    moments = StreamingMoments(3, 500, order=5, source="logits", device=torch.device("cpu"))
    for start in range(0, 40, 16):
        moments.update(torch.from_numpy(samples[start:start + 16]))
    reference, values = reference_features(samples.astype(np.float64), order=5, weight=1.0, source="logits")
    assert_moments_close(moments.finish(1.0).numpy(), reference, values, order=5, weight=1.0, rtol=1e-5)


def test_samples_of_the_wrong_shape_are_refused():
    moments = StreamingMoments(2, 5, order=2, source="logits", device=torch.device("cpu"))
    with pytest.raises(ValueError, match=r"expected \(b, 2, 5\)"):
        moments.update(torch.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="3 classes; the state has 2"):
        moments.update(torch.zeros(1, 3, 2, 2), UpsampledPixels((2, 2), (1, 5)))
    assert moments.count == 0


def test_feature_layout_and_weighting_hand_derived():
    # 3 samples, 2 classes, 1 pixel. Class 0: 0, 0, 3 (mean 1, deviations -1 -1 2: m2 2, m3 2, m4 6);
    # class 1: 0, 0, 0 (all moments 0). Mean softmax: (2 * [1/2, 1/2] + [s, 1 - s]) / 3, s = sigmoid(3).
    moments = StreamingMoments(2, 1, order=4, source="logits", device=torch.device("cpu"))
    moments.update(torch.tensor([[[0.0], [0.0]], [[0.0], [0.0]]]))
    moments.update(torch.tensor([[[3.0], [0.0]]]))
    w = 0.25
    s = 1 / (1 + math.exp(-3))
    p = np.array([1 + s, 2 - s]) / 3
    entropy = -(p * np.log(p)).sum()
    expected = [(1 - w) * entropy, w * 1, 0, w * 2, 0, w * 2, 0, w * 6, 0]
    assert np.allclose(moments.finish(w)[:, 0].numpy(), expected, rtol=1e-6, atol=1e-7)


def test_exactly_num_samples_passes_in_batches():
    model, x = SplitNet(), image()
    moment_features(model, x, num_samples=11, batch_size=4, order=2, weight=0.5, source="logits", seed=0)
    assert model.calls == [("prefix", 1), ("suffix", 4), ("suffix", 4), ("suffix", 3)]
    model.calls.clear()
    moment_features(model, x, num_samples=11, batch_size=4, order=2, weight=0.5, source="logits", seed=0,
                    reuse_prefix=False)
    assert model.calls == [("forward", 4), ("forward", 4), ("forward", 3)]
    plain = PlainNet()
    moment_features(plain, x, num_samples=5, batch_size=16, order=2, weight=0.5, source="logits", seed=0)
    assert plain.calls == [("forward", 5)]


def test_batchnorm_untouched_modes_and_rng_restored():
    model, x = SplitNet(), image()
    model.train()
    model.head[1].eval()
    modes = [m.training for m in model.modules()]
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    features = moment_features(model, x, num_samples=6, batch_size=4, order=2, weight=1.0, source="logits", seed=0)
    assert torch.equal(torch.rand(3), expected_draw)  # the caller's random stream is untouched
    assert features[1 + NUM_CLASSES:].abs().max() > 0  # dropout was active: the samples vary
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, stats[key]), key  # running_mean / running_var / num_batches_tracked


def test_same_seed_same_features_and_prefix_reuse_equals_full_passes():
    model, x = SplitNet(), image()
    settings = dict(num_samples=9, batch_size=4, order=4, weight=0.5, source="logits")
    reused = moment_features(model, x, seed=7, **settings)
    full = moment_features(model, x, seed=7, reuse_prefix=False, **settings)
    plain = moment_features(PlainNet(), x, seed=7, **settings)
    other = moment_features(model, x, seed=8, **settings)
    assert torch.equal(reused, moment_features(model, x, seed=7, **settings))
    assert torch.allclose(reused, full, rtol=1e-5, atol=1e-6)
    assert torch.allclose(plain, full, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(reused, other, rtol=1e-3, atol=1e-4)


def test_pixel_subset_equals_the_full_map_there():
    model, x = SplitNet(), image()
    settings = dict(num_samples=6, batch_size=4, order=3, weight=0.5, source="softmax", seed=2)
    full = moment_features(model, x, **settings)
    pixels = np.array([0, 5, 17, 41])
    subset = moment_features(model, x, pixels=pixels, **settings)
    assert subset.shape == (num_features(NUM_CLASSES, 3), 4)
    assert torch.allclose(subset, full.flatten(1)[:, pixels], rtol=1e-6, atol=1e-7)


def test_a_model_without_dropout_is_refused():
    with pytest.raises(ValueError, match="no dropout layer") as error:
        moment_features(NoDropoutNet(), image(), num_samples=4, batch_size=2, order=2, weight=0.5,
                        source="logits", seed=0)
    assert OODMC_MODELS[0] in str(error.value)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_dropout_that_does_not_reach_the_output_is_refused(batch_size):
    model = DeadDropoutNet()
    modes = [m.training for m in model.modules()]
    with pytest.raises(ValueError, match="identical logits.*do not reach the output") as error:
        moment_features(model, image(), num_samples=4, batch_size=batch_size, order=2, weight=0.5,
                        source="logits", seed=0)
    assert all(name in str(error.value) for name in OODMC_MODELS) and "dsn.0" in str(error.value)
    assert [m.training for m in model.modules()] == modes


def test_bad_settings_are_refused_before_sampling():
    model = SplitNet()
    for settings, message in [(dict(order=1), "order"), (dict(source="probs"), "source"),
                              (dict(weight=1.5), "weight"), (dict(num_samples=1), "num_samples")]:
        arguments = dict(num_samples=4, batch_size=2, order=2, weight=0.5, source="logits", seed=0) | settings
        with pytest.raises(ValueError, match=message):
            moment_features(model, image(), **arguments)
    assert model.calls == []


def test_tiny_model_prefix_reuse_equals_full_passes_and_leaves_batchnorm_alone():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("DeepLabV3+_TinyResNet")
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    x = image(32, 48)
    settings = dict(num_samples=5, batch_size=4, order=4, weight=0.5, source="logits", seed=3)
    reused = moment_features(model, x, **settings)
    full = moment_features(model, x, reuse_prefix=False, **settings)
    assert reused.shape == (77, 32, 48)
    assert reused[1 + 19:].abs().amax(dim=(1, 2)).min() > 0  # every class's moments vary
    assert torch.allclose(reused, full, rtol=1e-5, atol=1e-5 * full.abs().max().item())
    assert all(torch.equal(v, stats[k]) for k, v in model.state_dict().items())


def test_dualgcnnet_is_refused_naming_the_models_that_work():
    with pytest.raises(ValueError, match="DualGCNNet_res50's only dropout is in the auxiliary dsn branch") as error:
        moment_features(build_model("DualGCNNet_res50"), image(24, 24), num_samples=4, batch_size=2, order=4,
                        weight=0.5, source="logits", seed=0)
    assert all(name in str(error.value) for name in OODMC_MODELS)


def label_maps():
    rng = np.random.default_rng(3)
    return [rng.choice([0, 1, 2, 255], size=(20, 30), p=[0.3, 0.4, 0.1, 0.2]) for _ in range(3)]


def test_training_pixels_balanced_never_void_and_reproducible():
    labels = label_maps()
    pixels = draw_training_pixels(labels, in_id=1, ood_id=2, num_pixels=101, seed=0)
    drawn = np.concatenate([label.reshape(-1)[index] for label, index in zip(labels, pixels)])
    assert (drawn == 2).sum() == 50 and (drawn == 1).sum() == 51 and len(drawn) == 101
    assert all(len(np.unique(index)) == len(index) for index in pixels)
    assert all(len(index) > 0 for index in pixels)
    again = draw_training_pixels(labels, in_id=1, ood_id=2, num_pixels=101, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(pixels, again))
    # drawing every OoD pixel must give all of them: the draw is without replacement over the whole set
    num_ood = sum(int((label == 2).sum()) for label in labels)
    everything = draw_training_pixels(labels, in_id=1, ood_id=2, num_pixels=2 * num_ood, seed=1)
    for label, index in zip(labels, everything):
        assert np.array_equal(np.intersect1d(index, np.flatnonzero(label == 2)), np.flatnonzero(label == 2))


def test_too_few_training_pixels_is_an_error():
    labels = label_maps()
    num_ood = sum(int((label == 2).sum()) for label in labels)
    with pytest.raises(ValueError, match=f"{num_ood} OoD pixels.*lower svm_points_num"):
        draw_training_pixels(labels, in_id=1, ood_id=2, num_pixels=2 * num_ood + 2, seed=0)


def separable_scene(seed, channels=9, h=40, w=50):
    """Features (F, H, W) whose pixels project to +3 (OoD) or -3 (in-distribution) on a fixed unit
    direction (plus an offset); the other directions are noise of different scales."""
    direction = np.random.default_rng(100).normal(size=channels)
    direction /= np.linalg.norm(direction)
    rng = np.random.default_rng(seed)
    label = rng.choice([1, 2, 255], size=(h, w), p=[0.6, 0.3, 0.1])
    features = rng.normal(size=(channels, h, w)) * rng.uniform(0.5, 5, size=(channels, 1, 1)) + 10
    side = np.tensordot(direction, features, 1)
    features += direction[:, None, None] * (np.where(label == 2, 1.0, -1.0) * 3 - side + 10 * direction.sum())
    return torch.from_numpy(features.astype(np.float32)), label


def test_separable_features_give_auroc_above_099_and_decision_map_matches_sklearn():
    features, label = separable_scene(0)
    pixels = draw_training_pixels([label], in_id=1, ood_id=2, num_pixels=400, seed=0)[0]
    classifier = fit_svm(features.flatten(1)[:, pixels].T.numpy(), label.reshape(-1)[pixels] == 2, seed=0)
    test_features, test_label = separable_scene(1)
    scores = decision_map(classifier, test_features)
    assert scores.shape == test_label.shape and scores.dtype == np.float32
    sklearn_scores = classifier.decision_function(test_features.flatten(1).T.numpy()).reshape(test_label.shape)
    assert np.allclose(scores, sklearn_scores, rtol=1e-4, atol=1e-4)
    valid = test_label != 255
    assert roc_auc_score(test_label[valid] == 2, scores[valid]) > 0.99


def test_hard_decision_counts_and_metrics_hand_derived():
    scores = np.array([[1.0, -1.0, 2.0], [0.5, -0.2, 3.0]])
    label = np.array([[2, 2, 1], [1, 1, 255]])
    counts = hard_decision_counts(scores, label, in_id=1, ood_id=2)
    assert counts.tolist() == [1, 2, 1, 1]  # TP, FP, FN, TN; the void pixel is left out
    metrics = hard_decision_metrics(counts + counts)
    assert metrics["f1"] == pytest.approx(2 * 2 / (2 * 2 + 4 + 2))
    assert metrics["precision"] == pytest.approx(2 / 6)
    assert metrics["fpr"] == pytest.approx(4 / 6)
    assert math.isnan(hard_decision_metrics([0, 0, 3, 4])["precision"])


def test_save_load_round_trip_gives_the_decisions_of_the_sklearn_classifier(tmp_path):
    features, label = separable_scene(0)
    pixels = draw_training_pixels([label], in_id=1, ood_id=2, num_pixels=200, seed=0)[0]
    classifier = fit_svm(features.flatten(1)[:, pixels].T.numpy(), label.reshape(-1)[pixels] == 2, seed=0)
    settings = {"moment_num": 8, "moment_order": 4, "moment_weight": 0.5, "moment_source": "logits"}
    path = tmp_path / "svm" / "svm.npz"
    save_svm(classifier, settings, path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only: nothing in it can run code
        assert all(data[name].dtype != object for name in data.files)
    loaded, loaded_settings = load_svm(path)
    assert loaded_settings == settings
    sklearn_scores = classifier.decision_function(features.flatten(1).T.numpy()).reshape(features.shape[1:])
    scores = decision_map(loaded, features)
    assert np.allclose(scores, sklearn_scores, rtol=1e-4, atol=1e-4)
    assert np.array_equal(scores > 0, classifier.predict(features.flatten(1).T.numpy()).reshape(scores.shape) == 1)
    with pytest.raises(TypeError, match="plain dict"):
        save_svm(classifier, {"device": torch.device("cpu")}, tmp_path / "bad.npz")


@pytest.mark.parametrize("content", [b"not an npz", pickle.dumps({"format": "meta-ood oodmc svm v1"}), None],
                         ids=["bytes", "old pickle", "other npz"])
def test_load_svm_refuses_other_files_in_one_line(tmp_path, content):
    path = tmp_path / "svm.npz"
    if content is None:
        np.savez(path, features=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match="meta_classification.py -moment -SVM") as error:
        load_svm(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match="meta_classification.py -moment -SVM"):
        load_svm(tmp_path / "missing.npz")
