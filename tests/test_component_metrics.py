import numpy as np
import pytest
from scipy import ndimage

from src.evaluation.component_metrics import SIOU_THRESHOLDS, ComponentMetrics, image_components
from tests.protocol_reference import benchmark_instances, benchmark_segment_metrics

TAU = 0.5


def scene(shape, gt=(), void=(), pred=()):
    """(score, label) of rectangles given as (row0, row1, col0, col1), ends exclusive."""
    label = np.zeros(shape, dtype=np.uint8)
    score = np.zeros(shape, dtype=np.float32)
    for r0, r1, c0, c1 in gt:
        label[r0:r1, c0:c1] = 1
    for r0, r1, c0, c1 in void:
        label[r0:r1, c0:c1] = 255
    for r0, r1, c0, c1 in pred:
        score[r0:r1, c0:c1] = 1.0
    return score, label


def metrics_of(*images, segsize=1, instsize=1):
    metrics = ComponentMetrics(TAU, segsize, instsize)
    for score, label in images:
        metrics.update(score, label)
    return metrics.compute()


def per_threshold(value_at):
    return [value_at(t) for t in SIOU_THRESHOLDS]


def test_thresholds_are_the_benchmarks():
    assert len(SIOU_THRESHOLDS) == 11 and SIOU_THRESHOLDS[0] == 0.25 and SIOU_THRESHOLDS[-1] == 0.75
    assert SIOU_THRESHOLDS[5] == 0.5  # the hand cases below sit exactly on 0.5


def test_perfect_hit():
    # a 2x2 object predicted exactly: sIoU = 4 / (4 + 4 - 4) = 1, PPV = 4 / 4 = 1, TP at every t.
    # A pixel scoring exactly tau is not predicted (score > tau), else it would be a false positive.
    score, label = scene((6, 6), gt=[(1, 3, 1, 3)], pred=[(1, 3, 1, 3)])
    score[5, 5] = TAU
    result = metrics_of((score, label))
    assert (result["siou_gt"], result["ppv"], result["mean_f1"]) == (1.0, 1.0, 1.0)
    assert result["tp"] == [1] * 11 and result["fn"] == [0] * 11 and result["fp"] == [0] * 11


def test_half_hit():
    # object: rows 0-1, cols 0-1 (4 px); prediction: rows 0-1, cols 1-2 (4 px), overlap 2 px.
    # sIoU = 2 / (4 + 4 - 2) = 1/3: TP for t = 0.25, 0.30, FN for the other 9.
    # PPV = 2 / 4 = 0.5: FP for t = 0.55 .. 0.75 (0.5 < t), 5 values.
    # F1_t = 2*1 / (2 + 0 + 0) = 1 for the first 2 t, 0 afterwards: mean F1 = 2/11.
    result = metrics_of(scene((4, 6), gt=[(0, 2, 0, 2)], pred=[(0, 2, 1, 3)]))
    assert result["siou_gt"] == pytest.approx(1 / 3)
    assert result["ppv"] == pytest.approx(0.5)
    assert result["tp"] == [1] * 2 + [0] * 9
    assert result["fp"] == [0] * 6 + [1] * 5
    assert result["mean_f1"] == pytest.approx(2 / 11)

    # object rows 0-1, cols 0-3 (8 px), predicted on cols 0-1 only: sIoU = 4 / (4 + 8 - 4) = 0.5,
    # a TP up to and including t = 0.5 (6 values); PPV 1. F1 = 1 for those 6 t, else 0: mean 6/11.
    result = metrics_of(scene((4, 6), gt=[(0, 2, 0, 4)], pred=[(0, 2, 0, 2)]))
    assert (result["siou_gt"], result["ppv"]) == (0.5, 1.0)
    assert result["tp"] == [1] * 6 + [0] * 5
    assert result["mean_f1"] == pytest.approx(6 / 11)


def test_one_prediction_over_two_objects_gets_the_adjustment():
    # objects A (cols 0-1) and B (cols 6-7), rows 0-1, 4 px each, apart; one prediction rows 0-1,
    # cols 0-7 (16 px) touches both. For A: intersection 4, adjustment = the 4 px of P on B, so
    # sIoU = 4 / (16 + 4 - 4 - 4) = 1/3 (without the adjustment 4/20 = 0.2 would miss every t); same for B.
    # PPV = 8 / 16 = 0.5. Per t: TP 2 for t <= 0.30, else FN 2; FP 1 for t >= 0.55.
    # F1: 2*2 / (4 + 0 + 0) = 1 for the first 2 t, 0 afterwards: mean 2/11.
    result = metrics_of(scene((3, 9), gt=[(0, 2, 0, 2), (0, 2, 6, 8)], pred=[(0, 2, 0, 8)]))
    assert result["num_gt"] == 2 and result["num_pred"] == 1
    assert result["siou_gt"] == pytest.approx(1 / 3)
    assert result["ppv"] == pytest.approx(0.5)
    assert result["tp"] == [2] * 2 + [0] * 9
    assert result["fn"] == [0] * 2 + [2] * 9
    assert result["mean_f1"] == pytest.approx(2 / 11)


def test_predicted_components_below_segsize_are_dropped():
    # segsize 5: the 4-px prediction exactly on the object is dropped, so the object is missed
    # (sIoU 0); the 6-px prediction on the background stays, PPV 0: FP at every t; F1 0.
    score, label = scene((5, 8), gt=[(0, 2, 0, 2)], pred=[(0, 2, 0, 2), (3, 5, 4, 7)])
    result = metrics_of((score, label), segsize=5)
    assert result["num_gt"] == 1 and result["num_pred"] == 1
    assert (result["siou_gt"], result["ppv"], result["mean_f1"]) == (0.0, 0.0, 0.0)
    assert result["fn"] == [1] * 11 and result["fp"] == [1] * 11


def test_objects_below_instsize_become_void():
    # A: rows 0-1, cols 0-1 (4 px); B: rows 0-1, cols 5-7 (6 px). Predictions: j1 = cols 0-2 (A plus
    # 2 background px), j2 = cols 5-7 (exactly B).
    # instsize 5: A becomes void, so j1 keeps only its 2 background px: PPV 0, an FP at every t.
    # B: sIoU 6 / (6 + 6 - 6) = 1, PPV(j2) = 1. Per t TP 1, FN 0, FP 1: F1 = 2 / 3.
    image = scene((3, 9), gt=[(0, 2, 0, 2), (0, 2, 5, 8)], pred=[(0, 2, 0, 3), (0, 2, 5, 8)])
    result = metrics_of(image, instsize=5)
    assert result["num_gt"] == 1 and result["num_pred"] == 2
    assert (result["siou_gt"], result["ppv"]) == (1.0, 0.5)
    assert result["mean_f1"] == pytest.approx(2 / 3)
    # instsize 1 keeps A: sIoU(A) = 4 / (6 + 4 - 4) = 2/3 and PPV(j1) = 4/6, so both means are 5/6
    result = metrics_of(image, instsize=1)
    assert result["num_gt"] == 2
    assert result["siou_gt"] == pytest.approx(5 / 6) and result["ppv"] == pytest.approx(5 / 6)


def test_void_pixels_are_neither_predicted_nor_counted():
    # object rows 0-1, cols 0-1; void rows 0-1, cols 2-3; prediction rows 0-1, cols 0-5. Without the
    # void pixels the prediction falls apart into cols 0-1 (exactly the object: sIoU 1, PPV 1) and
    # cols 4-5 (background: PPV 0, an FP at every t). Per t TP 1, FP 1: F1 = 2 / 3.
    result = metrics_of(scene((3, 7), gt=[(0, 2, 0, 2)], void=[(0, 2, 2, 4)], pred=[(0, 2, 0, 6)]))
    assert result["num_gt"] == 1 and result["num_pred"] == 2
    assert (result["siou_gt"], result["ppv"]) == (1.0, 0.5)
    assert result["mean_f1"] == pytest.approx(2 / 3)


def test_diagonal_neighbours_are_one_component():
    # two predicted pixels touching at a corner form one component (8-connectivity): PPV 1 / 2
    score, label = scene((4, 4), gt=[(0, 1, 0, 1)], pred=[(0, 1, 0, 1), (1, 2, 1, 2)])
    siou, ppv = image_components(score, label, TAU, segsize=1, instsize=1)
    assert siou.tolist() == [0.5] and ppv.tolist() == [0.5]


def test_empty_image_adds_nothing_and_counts_pool_over_images():
    empty = scene((5, 5))
    assert [len(values) for values in image_components(*empty, TAU, 1, 1)] == [0, 0]
    result = metrics_of(empty)
    assert np.isnan(result["siou_gt"]) and np.isnan(result["ppv"]) and np.isnan(result["mean_f1"])

    # perfect hit (TP 1) + the void case (TP 1, FP 1) + the empty image: pooled per t TP 2, FN 0,
    # FP 1, so F1 = 4 / 5, not the mean of the images' F1 (1 and 2/3)
    hit = scene((6, 6), gt=[(1, 3, 1, 3)], pred=[(1, 3, 1, 3)])
    voided = scene((3, 7), gt=[(0, 2, 0, 2)], void=[(0, 2, 2, 4)], pred=[(0, 2, 0, 6)])
    result = metrics_of(hit, empty, voided)
    assert result["tp"] == [2] * 11 and result["fp"] == [1] * 11
    assert result["mean_f1"] == pytest.approx(0.8)
    assert result["ppv"] == pytest.approx(2 / 3)


def test_merge_equals_one_accumulator():
    images = [random_image(np.random.default_rng(seed)) for seed in range(4)]
    whole = ComponentMetrics(TAU, 3, 2)
    halves = [ComponentMetrics(TAU, 3, 2), ComponentMetrics(TAU, 3, 2)]
    for i, (score, label) in enumerate(images):
        whole.update(score, label)
        halves[i % 2].update(score, label)
    merged, single = halves[0].merge(halves[1]).compute(), whole.compute()
    for key, value in single.items():
        assert merged[key] == pytest.approx(value), key
    with pytest.raises(ValueError, match="different tau"):
        whole.merge(ComponentMetrics(TAU, 4, 2))


def random_image(rng, shape=(40, 48)):
    """Blobs of OoD and void in smooth noise, and a smooth score that is higher on the OoD blobs."""
    objects, void, noise = (ndimage.gaussian_filter(rng.standard_normal(shape), 2) for _ in range(3))
    label = np.where(objects > 0.25, 1, 0).astype(np.uint8)
    label[void > 0.35] = 255
    score = (noise + 0.5 * (label == 1)).astype(np.float32)
    return score, label


def reference_components(score, label, tau, segsize, instsize):
    """The definition spelled out with one boolean mask per component."""
    eight = np.ones((3, 3))
    gt, num_gt = ndimage.label(label == 1, structure=eight)
    pred, num_pred = ndimage.label((score > tau) & (label != 255), structure=eight)
    for j in range(1, num_pred + 1):
        if np.sum(pred == j) < segsize:
            pred[pred == j] = 0
    roi = label != 255
    for k in range(1, num_gt + 1):
        if np.sum(gt == k) < instsize:
            roi[gt == k] = False
    siou = []
    for k in range(1, num_gt + 1):
        component = (gt == k) & roi
        if component.any():
            union_of_touching = np.isin(pred, np.unique(pred[component & (pred > 0)])) & roi
            intersection = np.sum(component & union_of_touching)
            adjustment = np.sum(union_of_touching & (gt > 0) & (gt != k))
            siou.append(intersection / (union_of_touching.sum() + component.sum() - intersection - adjustment))
    ppv = []
    for j in range(1, num_pred + 1):
        component = (pred == j) & roi
        if component.any():
            ppv.append(np.sum(component & (gt > 0)) / component.sum())
    return np.array(siou), np.array(ppv)


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_a_per_component_reference(seed):
    rng = np.random.default_rng(seed)
    score, label = random_image(rng)
    tau, segsize, instsize = rng.uniform(0, 0.4), int(rng.integers(1, 12)), int(rng.integers(1, 12))
    siou, ppv = image_components(score, label, tau, segsize, instsize)
    ref_siou, ref_ppv = reference_components(score, label, tau, segsize, instsize)
    assert len(ref_siou) > 0 and len(ref_ppv) > 0
    np.testing.assert_allclose(siou, ref_siou, rtol=1e-12)
    np.testing.assert_allclose(ppv, ref_ppv, rtol=1e-12)


def test_bad_labels_raise():
    score = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="0, 1 and 255"):
        image_components(score, np.array([[0, 2], [1, 255]], dtype=np.uint8), TAU, 1, 1)
    with pytest.raises(ValueError, match="uint8"):
        image_components(score, np.zeros((2, 2), dtype=np.int64), TAU, 1, 1)
    with pytest.raises(ValueError, match="same shape"):
        image_components(score, np.zeros((2, 3), dtype=np.uint8), TAU, 1, 1)


def edge_cases():
    """(score, label, instsize) of frames whose components touch the frame's edges or that have none: the box the
    components are found in must change nothing."""
    rng = np.random.default_rng(7)
    score, label = random_image(rng)
    corners = np.zeros((12, 15), np.uint8)
    corners[0, 0] = corners[-1, -1] = corners[0, -3:] = corners[-4:, 0] = 1
    corner_score = np.zeros((12, 15), np.float32)
    corner_score[-2:, -5:] = corner_score[0, :2] = 1
    almost_all_ood = np.ones((12, 15), np.uint8)
    almost_all_ood[5, 5:7] = 0  # a background of 3 pixels with the void one, predicted OoD, and void itself (below
    almost_all_ood[0, 0] = 255  # instsize 4) with the benchmark's quirk
    noise = rng.random((12, 15)).astype(np.float32)
    noise[5, 5:7] = 1
    return [(score, label, 3), (corner_score, corners, 1), (corner_score, corners, 2),
            (np.zeros((12, 15), np.float32), np.zeros((12, 15), np.uint8), 1),
            (np.zeros((12, 15), np.float32), np.full((12, 15), 255, np.uint8), 1), (noise, almost_all_ood, 4)]


@pytest.mark.parametrize("case", range(6))
def test_components_at_the_frame_edges_and_a_tiny_background_equal_the_references(case):
    score, label, instsize = edge_cases()[case]
    siou, ppv = image_components(score, label, TAU, 1, instsize)
    ref_siou, ref_ppv = reference_components(score, label, TAU, 1, instsize)
    np.testing.assert_allclose(siou, ref_siou, rtol=1e-12)
    np.testing.assert_allclose(ppv, ref_ppv, rtol=1e-12)
    # the benchmark's quirk: a background below instsize is void too
    siou, ppv = image_components(score, label, TAU, 1, instsize, void_small_background=True)
    ref_siou, ref_ppv = benchmark_segment_metrics(*benchmark_instances(score, label, TAU, 1, instsize))
    np.testing.assert_allclose(siou, ref_siou, rtol=1e-12)
    np.testing.assert_allclose(ppv, ref_ppv, rtol=1e-12)
