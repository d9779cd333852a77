import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from src.evaluation.pixel_metrics import PixelMetrics


def sklearn_metrics(scores, is_ood):
    scores = scores.astype(np.float64)  # sklearn sums the scores to check them; float32 would overflow at 3e38
    fpr, tpr, _ = roc_curve(is_ood, scores)
    return roc_auc_score(is_ood, scores), average_precision_score(is_ood, scores), fpr[np.searchsorted(tpr, 0.95)]


def realistic(name, n, rng):
    """(scores, is_ood) shaped like the real scores: OoD pixels score higher, with overlap."""
    is_ood = rng.random(n) < 0.1
    if name == "entropy":  # in-distribution near 0, OoD near 1, both piling up at the ends
        scores = np.where(is_ood, 1 - rng.beta(0.4, 4, n), rng.beta(0.3, 5, n))
        scores[rng.random(n) < 0.05] = 0.0
    elif name == "max_logit":  # -max logit, max logits in [-5, 30]
        scores = -np.clip(np.where(is_ood, rng.normal(8, 3, n), rng.normal(15, 5, n)), -5, 30)
    elif name == "sml":  # about N(0, 1) with heavy tails
        scores = np.where(is_ood, rng.standard_t(3, n) + 1.5, rng.standard_t(3, n))
    else:  # heavy ties: float16-rounded probabilities
        scores = np.where(is_ood, rng.beta(2, 1, n), rng.beta(1, 2, n)).astype(np.float16)
    return scores.astype(np.float32), is_ood


@pytest.mark.parametrize("name", ["entropy", "max_logit", "sml", "float16_ties"])
def test_agrees_with_sklearn_on_realistic_scores(name):
    scores, is_ood = realistic(name, 200_000, np.random.default_rng(0))
    metrics = PixelMetrics()
    for image, image_ood in zip(scores.reshape(4, 250, 200), is_ood.reshape(4, 250, 200)):
        metrics.update(image, image_ood)
    result = metrics.compute()
    auroc, ap, fpr95 = sklearn_metrics(scores, is_ood)
    assert result["auroc"] == pytest.approx(auroc, abs=1e-4)
    assert abs(result["auroc"] - auroc) <= result["auroc_error_bound"] + 1e-12
    assert result["ap"] == pytest.approx(ap, abs=1e-4)
    assert result["fpr95"] == pytest.approx(fpr95, abs=1e-3)
    assert abs(result["fpr95"] - fpr95) <= result["fpr95_error_bound"] + 1e-12
    assert (result["num_ood"], result["num_in"]) == (is_ood.sum(), (~is_ood).sum())


def test_equals_sklearn_when_every_value_has_its_own_bin():
    # ties, zero of both signs, tiny, huge and negative scores: all far apart on the float grid
    rng = np.random.default_rng(1)
    values = np.array([-3e38, -1e10, -2.5, -1e-30, -0.0, 0.0, 1e-38, 1e-20, 0.25, 0.5, 0.75, 1.0, 7.0, 1e30, 3e38],
                      dtype=np.float32)
    scores = rng.choice(values, 5000)
    is_ood = rng.random(5000) < 0.2 + 0.6 * (scores > 0.3)
    metrics = PixelMetrics()
    metrics.update(scores, is_ood)
    result = metrics.compute()
    auroc, ap, fpr95 = sklearn_metrics(scores, is_ood)
    assert result["auroc"] == pytest.approx(auroc, abs=1e-12)
    assert result["ap"] == pytest.approx(ap, abs=1e-12)
    assert result["fpr95"] == pytest.approx(fpr95, abs=1e-12)
    # each downsampled ROC point is a point of sklearn's full curve
    fpr, tpr, _ = roc_curve(is_ood, scores.astype(np.float64), drop_intermediate=False)
    for x, y in zip(result["roc"]["fpr"], result["roc"]["tpr"]):
        assert np.any(np.isclose(fpr, x, atol=1e-12) & np.isclose(tpr, y, atol=1e-12))


def test_constant_scores_are_one_big_tie():
    is_ood = np.array([True, False, False, True, False])
    metrics = PixelMetrics()
    metrics.update(np.full(5, 0.3), is_ood)
    result = metrics.compute()
    # one threshold: everything predicted OoD, so TPR = FPR = 1 and precision = 2 / 5
    assert result["auroc"] == pytest.approx(0.5)
    assert result["ap"] == pytest.approx(0.4)
    assert result["fpr95"] == 1.0
    assert result["best_f1"] == pytest.approx(2 * 2 / (2 * 2 + 3))


def test_tiny_sets_by_hand():
    metrics = PixelMetrics()
    metrics.update(np.array([0.9, 0.1]), np.array([True, False]))
    result = metrics.compute()
    assert (result["auroc"], result["ap"], result["fpr95"], result["best_f1"]) == (1.0, 1.0, 0.0, 1.0)

    # ranking OoD, in, OoD: ROC (0, .5), (1, .5), (1, 1) -> AUROC 0.5; AP = .5 * 1 + .5 * 2/3
    metrics = PixelMetrics()
    metrics.update(np.array([3.0, 2.0, 1.0]), np.array([True, False, True]))
    result = metrics.compute()
    assert result["auroc"] == pytest.approx(0.5)
    assert result["ap"] == pytest.approx(0.5 + 1 / 3)
    assert result["fpr95"] == 1.0


def test_fpr95_takes_the_first_threshold_that_reaches_exactly_95_percent():
    # 19 of 20 OoD pixels score 9, 10 in-distribution pixels 5, the last OoD pixel 0: at threshold 9
    # TPR = 19/20 = 0.95 already, with FPR 0
    scores = np.array([9.0] * 19 + [5.0] * 10 + [0.0])
    is_ood = np.array([True] * 19 + [False] * 10 + [True])
    metrics = PixelMetrics()
    metrics.update(scores, is_ood)
    assert metrics.compute()["fpr95"] == 0.0 == sklearn_metrics(scores, is_ood)[2]


def test_infinite_scores_rank_at_the_ends():
    metrics = PixelMetrics()
    metrics.update(np.array([np.inf, 1e38, -1e38, -np.inf]), np.array([True, True, False, False]))
    result = metrics.compute()
    assert (result["auroc"], result["ap"], result["fpr95"]) == (1.0, 1.0, 0.0)


def test_several_updates_and_merges_equal_one_big_update():
    scores, is_ood = realistic("sml", 30_000, np.random.default_rng(2))
    # 20 bits: a smaller grid keeps the many merges quick; the bookkeeping is the same
    whole = PixelMetrics(bits=20)
    whole.update(scores, is_ood)
    parts = [PixelMetrics(bits=20) for _ in range(3)]
    streamed = PixelMetrics(bits=20)
    for i, (part, part_ood) in enumerate(zip(np.array_split(scores, 7), np.array_split(is_ood, 7))):
        parts[i % 3].update(part, part_ood)
        streamed.update(part, part_ood)
    assert np.array_equal(streamed.counts, whole.counts)
    assert np.array_equal((parts[0] + parts[1] + parts[2]).counts, whole.counts)
    assert np.array_equal(parts[0].merge(parts[1]).merge(parts[2]).counts, whole.counts)
    assert streamed.compute()["ap"] == whole.compute()["ap"]


def test_best_f1_threshold_equals_brute_force():
    rng = np.random.default_rng(3)
    scores = (rng.integers(0, 40, 3000) / 20 - 0.5).astype(np.float32)  # many ties, negatives and zero
    is_ood = rng.random(3000) < 0.1 + 0.3 * (scores > 0.8)
    best_f1, best_mask = -1, None
    for tau in np.concatenate([[-np.inf], np.unique(scores)])[::-1]:  # highest threshold first
        mask = scores > tau
        tp = np.sum(mask & is_ood)
        f1 = 2 * tp / (mask.sum() + is_ood.sum())  # 2TP + FP + FN = predicted + actual OoD
        if f1 > best_f1:
            best_f1, best_mask = f1, mask
    metrics = PixelMetrics()
    metrics.update(scores, is_ood)
    result = metrics.compute()
    assert result["best_f1"] == pytest.approx(best_f1, abs=1e-12)
    assert np.array_equal(scores > result["f1_threshold"], best_mask)


def test_best_f1_ties_take_the_highest_threshold():
    # predicting {3} gives F1 = 2*1 / (1 + 2) = 2/3, predicting {3, 2, 2, 1} gives 2*2 / (4 + 2) = 2/3
    scores = np.array([3.0, 2.0, 2.0, 1.0, 0.0])
    is_ood = np.array([True, False, False, True, False])
    metrics = PixelMetrics()
    metrics.update(scores, is_ood)
    result = metrics.compute()
    assert result["best_f1"] == pytest.approx(2 / 3)
    assert np.array_equal(scores > result["f1_threshold"], [True, False, False, False, False])


@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_best_f1_threshold_keeps_a_bin_that_starts_at_zero(zero):
    scores = np.array([-1.0, -1e-30, zero, 0.0, 2.0], dtype=np.float32)
    is_ood = np.array([False, False, True, True, True])
    metrics = PixelMetrics()
    metrics.update(scores, is_ood)
    result = metrics.compute()
    assert result["best_f1"] == 1.0
    assert np.array_equal(scores > result["f1_threshold"], is_ood)


def test_curves_run_from_corner_to_corner_and_are_downsampled():
    scores, is_ood = realistic("max_logit", 50_000, np.random.default_rng(4))
    metrics = PixelMetrics()
    metrics.update(scores, is_ood)
    result = metrics.compute(curve_points=50)
    fpr, tpr = result["roc"]["fpr"], result["roc"]["tpr"]
    assert len(fpr) <= 50 and len(result["pr"]["recall"]) <= 50
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert result["pr"]["recall"][-1] == 1.0
    assert result["pr"]["precision"][-1] == pytest.approx(is_ood.mean())


@pytest.mark.parametrize("is_ood", [np.zeros(10, dtype=bool), np.ones(10, dtype=bool)])
def test_one_class_raises(is_ood):
    metrics = PixelMetrics()
    metrics.update(np.linspace(0, 1, 10), is_ood)
    with pytest.raises(ValueError, match="need OoD and in-distribution pixels"):
        metrics.compute()


def test_bad_input_raises():
    metrics = PixelMetrics()
    with pytest.raises(ValueError, match="bool"):
        metrics.update(np.zeros(3), np.array([0, 1, 255]))
    with pytest.raises(ValueError, match="shape"):
        metrics.update(np.zeros(3), np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        metrics.update(np.array([0.5, np.nan]), np.array([True, False]))
    with pytest.raises(ValueError, match="bits"):
        metrics.merge(PixelMetrics(bits=16))
