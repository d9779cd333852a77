"""The three evaluation protocols against the slow references of tests/protocol_reference.py, hand-made
frames with known answers, and frame-order independence where the protocol promises it."""
import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, roc_curve

from src.evaluation.component_metrics import ComponentMetrics, SIOU_THRESHOLDS
from src.evaluation.protocols import PROTOCOLS, build_protocol, evaluate_frames
from tests.protocol_reference import (meta_ood_reference, smiyc_component_reference, smiyc_frame_reference,
                                      smiyc_pixel_reference)


def random_frames(seed, num=4, shape=(48, 64), float16=False):
    """(score float32, label uint8 0/1/255) frames with OoD blobs that score higher, and some void."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num):
        label = np.zeros(shape, dtype=np.uint8)
        for _ in range(rng.integers(1, 4)):
            r, c = rng.integers(0, shape[0] - 8), rng.integers(0, shape[1] - 8)
            label[r:r + rng.integers(3, 9), c:c + rng.integers(3, 9)] = 1
        label[rng.random(shape) < 0.05] = 255
        score = np.where(label == 1, 0.3 + 0.7 * rng.random(shape), rng.beta(1, 5, shape))
        score = score.astype(np.float16 if float16 else np.float32).astype(np.float32)
        frames.append((score, label))
    return frames


# ---- meta-ood

@pytest.mark.parametrize("seed", [0, 1])
def test_meta_ood_equals_the_original_bit_for_bit(seed):
    frames = random_frames(seed)
    # scores on the bin edges, at 0 and at 1 land where np.histogram puts them
    frames[0][0][:2, :20] = np.array([k / 100 for k in range(0, 101, 5)][:20], dtype=np.float32)
    frames[0][0][2, :3] = (0.0, 1.0, np.float32(0.29))
    result = evaluate_frames(build_protocol("meta-ood", 50, 10), lambda: frames)
    auroc, ap, fpr95, counts_in, counts_out = meta_ood_reference(frames)
    assert result["counts_in"] == counts_in.tolist() and result["counts_out"] == counts_out.tolist()
    assert (result["auroc"], result["ap"], result["fpr95"]) == (auroc, ap, fpr95)
    assert "component" not in result


def test_meta_ood_hand_case_and_range():
    label = np.array([[0, 0, 1, 255]], dtype=np.uint8)
    protocol = build_protocol("meta-ood", 1, 1)
    protocol.update(np.array([[0.001, 0.2, 0.995, 7.0]], dtype=np.float32), label)  # the void pixel may be 7
    result = protocol.compute()
    assert (result["auroc"], result["ap"], result["fpr95"]) == (1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        protocol.update(np.array([[0.5, 0.5, 1.5, 0.0]], dtype=np.float32), label)


# ---- smiyc: the benchmark's definitions -----------------------------------------------------------------

@pytest.mark.parametrize("seed,float16,scale", [(0, False, 1), (1, True, 1), (2, True, 1), (3, False, -20)])
def test_smiyc_agrees_with_the_benchmark(seed, float16, scale):
    # scale -20: negative scores around -10 on in-distribution pixels (like -max logit), all beyond [0, 1]
    frames = [(scale * (1 - score) if scale < 0 else score, label)
              for score, label in random_frames(seed, float16=float16)]
    result = evaluate_frames(build_protocol("smiyc", 5, 3), lambda: frames)
    ref = smiyc_pixel_reference(frames)
    for key in ("auroc", "ap", "fpr95"):
        assert result[key] == pytest.approx(ref[key], abs=1e-6), key
    assert result["f1_threshold"] == ref["f1_threshold"]
    components = smiyc_component_reference(frames, ref["f1_threshold"], 5, 3)
    for key in ("siou_gt", "ppv", "mean_f1"):
        assert result["component"][key] == pytest.approx(components[key], abs=1e-6, nan_ok=True), key
    assert result["component"]["num_pred"] > 0


def test_smiyc_quantile_edges_equal_numpys():
    # many ties and few pixels: the edges must be np.quantile's to the last bit, or pixels change bins
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 383, 384, 385, 5000):
        score = rng.choice(np.array([0.0, 0.1, 0.5, 0.5001, 0.9, 1.0], dtype=np.float16), size)
        score[: size // 3] = rng.random(size // 3).astype(np.float16)
        label = (rng.random(size) < 0.5).astype(np.uint8)
        protocol = build_protocol("smiyc", 1, 1)
        protocol.update(score.astype(np.float32)[None], label[None])
        thresholds, tp_rel, fp_rel, _, _ = smiyc_frame_reference(score, label)
        assert np.array_equal(protocol.thresholds[0], thresholds)
        assert np.array_equal(protocol.tp_rel[0], tp_rel) and np.array_equal(protocol.fp_rel[0], fp_rel)


def test_smiyc_orders_every_kind_of_float16_and_refuses_nan():
    # the histogram of float16 bit patterns must sort negatives, -0.0 / +0.0, subnormals and the largest
    # finite values as np.quantile and np.histogram do, and round as numpy's astype(float16)
    rng = np.random.default_rng(6)
    special = np.array([-65504, -3.5, -1e-7, -0.0, 0.0, 3e-8, 1e-7, 6.1e-5, 0.5, 0.50024414, 1.0, 6e4, 65504],
                       dtype=np.float32)
    score = np.where(rng.random((40, 50)) < 0.5, rng.choice(special, (40, 50)),
                     rng.normal(0, 2, (40, 50))).astype(np.float32)
    label = rng.choice(np.array([0, 1, 255], dtype=np.uint8), (40, 50), p=[0.6, 0.3, 0.1])
    protocol = build_protocol("smiyc", 1, 1)
    protocol.update(score, label)
    thresholds, tp_rel, fp_rel, _, _ = smiyc_frame_reference(score.astype(np.float16), label)
    assert np.array_equal(protocol.thresholds[0], thresholds)
    assert np.array_equal(protocol.tp_rel[0], tp_rel) and np.array_equal(protocol.fp_rel[0], fp_rel)
    score[label == 255] = np.nan  # a NaN on an ignored pixel still means a broken map
    with pytest.raises(ValueError, match="NaN"):
        protocol.update(score, label)


def test_smiyc_hand_case_and_threshold_semantics():
    # two OoD pixels at 0.75, in-distribution at 0.25: separated, AP 1, FPR95 0
    label = np.array([[0, 0, 1, 1, 255]], dtype=np.uint8)
    score = np.array([[0.25, 0.25, 0.75, 0.75, 0.9]], dtype=np.float32)
    result = evaluate_frames(build_protocol("smiyc", 1, 1), lambda: [(score, label)])
    assert (result["auroc"], result["ap"], result["fpr95"]) == (1.0, 1.0, 0.0)
    # the curve's points: (0, 0) prepended, then the edges 0.75 (F1 1), 0.75 again (the kept first entry),
    # 0.25 and 0; its best F1 is at index 1, and the benchmark reads index 1 of the unreduced edge list
    # [0.75, 0.25, 0]: tau = 0.25, not 0.75. With `score > 0.25` the components are still perfect.
    assert result["f1_threshold"] == 0.25
    assert result["component"]["siou_gt"] == 1.0 and result["component"]["mean_f1"] == 1.0


# ---- every protocol ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["exact", "meta-ood"])
def test_frame_order_does_not_matter(name):
    frames = random_frames(4, float16=True)
    forward = evaluate_frames(build_protocol(name, 5, 3), lambda: frames)
    backward = evaluate_frames(build_protocol(name, 5, 3), lambda: frames[::-1])
    for key in ("auroc", "ap", "fpr95"):
        assert forward[key] == pytest.approx(backward[key], abs=1e-12)


def test_exact_protocol_is_pixel_and_component_metrics():
    frames = random_frames(5)
    result = evaluate_frames(build_protocol("exact", 5, 3), lambda: frames)
    scores = np.concatenate([s[l != 255] for s, l in frames]).astype(np.float64)
    is_ood = np.concatenate([l[l != 255] == 1 for s, l in frames])
    fpr, tpr, _ = roc_curve(is_ood, scores)
    assert result["auroc"] == pytest.approx(auc(fpr, tpr), abs=1e-4)  # PixelMetrics' promise
    assert result["ap"] == pytest.approx(average_precision_score(is_ood, scores), abs=1e-4)
    components = ComponentMetrics(result["f1_threshold"], 5, 3)
    for score, label in frames:
        components.update(score, label)
    assert result["component"]["mean_f1"] == components.compute()["mean_f1"]


def test_bad_frames_are_refused():
    for name in PROTOCOLS:
        protocol = build_protocol(name, 1, 1)
        with pytest.raises(ValueError, match="uint8"):
            protocol.update(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64))
        with pytest.raises(ValueError, match="same shape"):
            protocol.update(np.zeros((2, 2), np.float32), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="unknown protocol"):
        build_protocol("paper", 1, 1)


def test_component_threshold_compares_in_float64():
    # float32(0.1) is 0.10000000149 > 0.1: a tau of 0.1 must select these pixels (a float32 comparison did not)
    score = np.full((4, 4), np.float32(0.1))
    label = np.ones((4, 4), dtype=np.uint8)
    metrics = ComponentMetrics(0.1, 1, 1)
    metrics.update(score, label)
    assert metrics.compute()["siou_gt"] == 1.0
    assert len(SIOU_THRESHOLDS) == 11
