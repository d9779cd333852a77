import json
import math

import numpy as np
import pytest
from scipy.stats import entropy

from src.evaluation.scores import (SCORE_INPUTS, ClassStats, anomaly_score, below, max_logit_score, max_softmax_score,
                                   meta_classified_score, normalized_entropy, softmax_top,
                                   standardized_max_logit_score)


def random_probs(rng, shape=(19, 6, 7), dtype=np.float32):
    logits = rng.normal(0, 3, shape)
    logits[:, 0, 0] = [200] + [0] * (shape[0] - 1)  # one confident pixel: probabilities that underflow to 0
    probs = np.exp(logits - logits.max(axis=0))
    return (probs / probs.sum(axis=0)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_normalized_entropy_equals_scipy(dtype):
    probs = random_probs(np.random.default_rng(0), dtype=dtype)
    assert np.any(probs == 0)
    expected = entropy(probs.astype(np.float64), axis=0) / math.log(19)
    result = normalized_entropy(probs)
    assert result.dtype == np.float32 and result.shape == (6, 7)
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_normalized_entropy_ends():
    uniform = np.full((19, 1, 2), 1 / 19, dtype=np.float32)
    one_hot = np.zeros((19, 1, 2), dtype=np.float32)
    one_hot[3] = 1
    np.testing.assert_allclose(normalized_entropy(uniform), 1, atol=1e-6)
    np.testing.assert_array_equal(normalized_entropy(one_hot), 0)


def test_softmax_and_logit_scores_by_hand():
    probs = np.array([[[0.7, 0.2]], [[0.3, 0.5]], [[0.0, 0.3]]], dtype=np.float16)  # (3, 1, 2)
    max_prob, pred = softmax_top(probs)
    np.testing.assert_array_equal(pred, [[0, 1]])
    np.testing.assert_allclose(max_softmax_score(max_prob), [[0.3, 0.5]], atol=1e-3)
    np.testing.assert_array_equal(max_logit_score(np.array([[4.0, -2.5]])), [[-4.0, 2.5]])


def test_standardized_max_logit_by_hand():
    # class 0: mean 1, std 2; class 1: mean 2, std 4 -> -(3 - 1) / 2 = -1 and -(-2 - 2) / 4 = 1
    result = standardized_max_logit_score(np.array([[3.0, -2.0]]), np.array([[0, 1]]), [1.0, 2.0], [2.0, 4.0])
    np.testing.assert_allclose(result, [[-1.0, 1.0]])


def test_class_stats_equal_a_direct_computation():
    rng = np.random.default_rng(1)
    images = [(rng.normal(10, 3, (8, 9)), rng.integers(0, 4, (8, 9))) for _ in range(3)]
    stats = ClassStats(5)  # class 4 is never predicted
    for max_logit, pred in images:
        stats.update(max_logit, pred)
    all_logits = np.concatenate([m.ravel() for m, _ in images])
    all_pred = np.concatenate([p.ravel() for _, p in images])
    mean, std = stats.mean_std()
    for c in range(4):
        assert mean[c] == pytest.approx(np.mean(all_logits[all_pred == c]), rel=1e-12)
        assert std[c] == pytest.approx(np.std(all_logits[all_pred == c]), rel=1e-9)
    # the never-predicted class falls back to the statistics pooled over all pixels
    assert mean[4] == pytest.approx(np.mean(all_logits), rel=1e-12)
    assert std[4] == pytest.approx(np.std(all_logits), rel=1e-9)


def test_class_with_a_single_pixel_or_constant_logit_uses_the_pooled_statistics():
    stats = ClassStats(3)
    stats.update(np.array([1.0, 3.0, 5.0, 7.0, 7.0]), np.array([0, 0, 1, 2, 2]))
    mean, std = stats.mean_std()
    pooled_mean, pooled_std = np.mean([1, 3, 5, 7, 7]), np.std([1, 3, 5, 7, 7])
    np.testing.assert_allclose(mean, [2.0, pooled_mean, pooled_mean])
    np.testing.assert_allclose(std, [1.0, pooled_std, pooled_std])


def test_class_stats_round_trip_through_json_and_merge():
    rng = np.random.default_rng(2)
    first, second, both = ClassStats(19), ClassStats(19), ClassStats(19)
    for stats in (first, second):
        max_logit, pred = rng.normal(12, 4, (5, 5)), rng.integers(0, 19, (5, 5))
        stats.update(max_logit, pred)
        both.update(max_logit, pred)
    loaded = ClassStats.from_dict(json.loads(json.dumps(first.merge(second).to_dict())))
    for name in ("count", "sum", "sum_sq"):
        np.testing.assert_allclose(getattr(loaded, name), getattr(both, name), rtol=1e-15)
    with pytest.raises(ValueError, match="count, sum and sum_sq"):
        ClassStats.from_dict({"count": [1.0]})
    with pytest.raises(ValueError, match="different lengths"):
        ClassStats.from_dict({"count": [1.0], "sum": [1.0, 2.0], "sum_sq": [1.0]})


def test_class_stats_reject_bad_input():
    stats = ClassStats(3)
    with pytest.raises(ValueError, match="outside"):
        stats.update(np.zeros(2), np.array([0, 3]))
    with pytest.raises(ValueError, match="fewer than 2 pixels"):
        stats.mean_std()


def test_anomaly_score_dispatches_by_name():
    rng = np.random.default_rng(3)
    probs = random_probs(rng, shape=(4, 3, 3))
    max_logit = rng.normal(8, 2, (3, 3))
    stats = ClassStats(4)
    stats.update(rng.normal(8, 2, (10, 10)), rng.integers(0, 4, (10, 10)))
    mean, std = stats.mean_std()
    max_prob, pred = softmax_top(probs)
    inputs = {"entropy": normalized_entropy(probs), "max_prob": max_prob, "pred": pred, "max_logit": max_logit}
    expected_sml = -(max_logit - mean[probs.argmax(0)]) / std[probs.argmax(0)]
    np.testing.assert_allclose(anomaly_score("sml", inputs, stats), expected_sml, rtol=1e-5)
    assert anomaly_score("entropy", inputs) is inputs["entropy"]
    np.testing.assert_array_equal(anomaly_score("max_softmax", inputs), 1 - probs.max(0))
    np.testing.assert_array_equal(anomaly_score("max_logit", inputs), -max_logit.astype(np.float32))
    with pytest.raises(ValueError, match="class statistics"):
        anomaly_score("sml", inputs)
    logits = rng.normal(0, 3, (4, 3, 3))
    lse = np.log(np.exp(logits).sum(0))
    np.testing.assert_allclose(anomaly_score("energy", {**inputs, "logsumexp": lse}), -lse, rtol=1e-6)
    with pytest.raises(ValueError, match="logsumexp"):
        anomaly_score("energy", inputs)
    with pytest.raises(ValueError, match="unknown score"):
        anomaly_score("free_energy", inputs)
    assert set(SCORE_INPUTS) == {"entropy", "max_softmax", "max_logit", "sml", "energy"}


def adversarial_probs(dtype):
    """(19, 40, 50) probabilities of `dtype` with what could tell two max / argmax apart: ties of two or more
    classes (the first class among them), all-equal and all-zero pixels, subnormals, ones, and values one ulp
    apart."""
    probs = random_probs(np.random.default_rng(4), shape=(19, 40, 50), dtype=dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    probs[:, 0, 0] = 0
    probs[:, 0, 1] = probs[0, 0, 1]
    probs[[0, 5, 18], 0, 2] = 0.5
    probs[[3, 4], 0, 3] = 1
    probs[:, 0, 4] = tiny
    probs[7, 0, 4] = 2 * tiny
    probs[[2, 9], 0, 5] = [np.nextafter(dtype(0.25), dtype(0)), dtype(0.25)]
    probs[[11, 1], 0, 6] = probs[:, 0, 6].max()  # a tie above every other class, the later class first in the list
    return probs


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_softmax_top_equals_numpy_max_and_argmax_of_the_float32_probs_bit_for_bit(dtype):
    probs = adversarial_probs(dtype)
    max_prob, pred = softmax_top(probs)
    as_float32 = probs.astype(np.float32)
    assert max_prob.dtype == dtype and pred.dtype == np.uint8
    assert max_prob.tobytes() == probs.max(0).tobytes()
    assert np.array_equal(pred, as_float32.argmax(0)) and pred[0, 2] == 0 and pred[0, 3] == 3 and pred[0, 6] == 1
    # max_softmax as it was computed from the float32 probs: 1 - max in float32, the same bits
    assert max_softmax_score(max_prob).tobytes() == (1 - as_float32.max(axis=0)).astype(np.float32).tobytes()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("odd", [-0.0, -0.5, np.nan, np.inf])
def test_softmax_top_of_a_map_with_signs_or_non_finite_values_is_numpys(dtype, odd):
    probs = adversarial_probs(dtype)
    probs[4, 3, 7] = odd  # bit patterns that no longer sort as the values do
    probs[:, 3, 8] = 0
    probs[6, 3, 8] = -0.0  # equal to +0.0: the tie goes to class 0
    max_prob, pred = softmax_top(probs)
    assert max_prob.tobytes() == probs.max(0).tobytes()
    assert np.array_equal(pred, probs.astype(np.float32).argmax(0)) and pred[3, 8] == 0


def test_softmax_top_refuses_what_is_no_softmax():
    with pytest.raises(ValueError, match="float16 or float32"):
        softmax_top(np.zeros((19, 2, 2), dtype=np.float64))
    with pytest.raises(ValueError, match="C <= 256"):
        softmax_top(np.zeros((300, 2, 2), dtype=np.float32))


# ---- the pixel score after the meta classifier


def test_meta_classified_score_without_removals_is_the_entropy_bit_for_bit():
    entropy_map = np.random.default_rng(1).random((9, 11)).astype(np.float32)
    score = meta_classified_score(entropy_map, np.zeros((9, 11), dtype=bool), 0.7)
    assert score.dtype == np.float32 and score.tobytes() == entropy_map.tobytes()


def test_meta_classified_score_moves_removed_pixels_below_the_threshold_in_their_order():
    rng = np.random.default_rng(2)
    entropy_map = rng.random((40, 50)).astype(np.float32)
    entropy_map[0, :3] = [1.0, np.nextafter(np.float32(1), np.float32(2)), 0.7]  # the ends of a segment's range
    removed = (entropy_map >= 0.7) & (rng.random((40, 50)) < 0.5)
    removed[0, :3] = True
    score = meta_classified_score(entropy_map, removed, 0.7)
    assert np.array_equal(score[~removed], entropy_map[~removed])
    assert score[removed].max() < np.float32(0.7)
    assert score[removed].min() >= 0.7 * 0.7 - 1e-6  # removed pixels stay above the low-entropy pixels
    before, after = entropy_map[removed], score[removed]
    order = np.argsort(before, kind="stable")
    step = np.diff(after[order])
    assert np.all(step >= 0)  # no two removed pixels swap places
    # float32 rounding alone ties them, and the cap below 0.7 that float16 holds too (entropy > 0.99958)
    assert np.all(step[(np.diff(before[order]) > 1e-6) & (after[order][1:] < below(0.7))] > 0)
    assert score.astype(np.float16)[removed].max() < 0.7  # below t in the float16 submission files too
