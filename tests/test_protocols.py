"""The three evaluation protocols against the slow references of tests/protocol_reference.py, hand-made
frames with known answers, and frame-order independence where the protocol promises it."""
import hashlib

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, roc_curve

from src.evaluation.component_metrics import ComponentMetrics, SIOU_THRESHOLDS
from src.evaluation.float_cells import sort_entries
from src.evaluation.legacy_argsort import argsort_numpy123
from src.evaluation.protocols import PROTOCOLS, build_protocol, evaluate_frames, histogram_bins
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


def values_around_the_edges(dtype):
    """Scores of `dtype` in [0, 1] where a bin could be missed: 0, 1, the smallest subnormal, each edge of the 100
    bins rounded to `dtype` and the values up to two ulps either side of it; for float16 every value in [0, 1]."""
    if dtype == np.float16:
        return np.arange(0x3C01, dtype=np.uint16).view(np.float16)
    edges = np.linspace(0, 1, 101).astype(dtype)
    values = [edges, np.array([0, 1, np.finfo(dtype).smallest_subnormal], dtype=dtype)]
    for direction in (np.inf, -np.inf):
        step = edges
        for _ in range(2):
            step = np.nextafter(step, dtype(direction))
            values.append(step)
    values = np.concatenate(values)
    return values[(values >= 0) & (values <= 1)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_meta_ood_bins_each_value_where_np_histogram_does(dtype):
    edges = np.linspace(0, 1, 101)
    values = values_around_the_edges(dtype)
    bins = histogram_bins(values, edges)
    # each value alone through np.histogram: the bin it counts it in
    expected = np.array([np.flatnonzero(np.histogram(value, bins=edges)[0])[0] for value in values])
    np.testing.assert_array_equal(bins, expected)
    assert (np.bincount(bins, minlength=100) == np.histogram(values, bins=edges)[0]).all()
    assert bins[values == 1].tolist() == [99] * int((values == 1).sum()) and set(bins[values == 0]) == {0}
    # and through the protocol, the values of both classes in one frame beside void pixels of any score
    frame = np.concatenate([values, values[::-1], [7.0, -1.0]]).astype(dtype)[None]
    label = np.repeat(np.array([0, 1, 255], dtype=np.uint8), [len(values), len(values), 2])[None]
    protocol = build_protocol("meta-ood", 1, 1)
    protocol.update(frame, label)
    assert protocol.counts.tolist() == [np.histogram(values, bins=edges)[0].tolist()] * 2


def test_meta_ood_hand_case_and_range():
    label = np.array([[0, 0, 1, 255]], dtype=np.uint8)
    protocol = build_protocol("meta-ood", 1, 1)
    protocol.update(np.array([[0.001, 0.2, 0.995, 7.0]], dtype=np.float32), label)  # the void pixel may be 7
    result = protocol.compute()
    assert (result["auroc"], result["ap"], result["fpr95"]) == (1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        protocol.update(np.array([[0.5, 0.5, 1.5, 0.0]], dtype=np.float32), label)


# ---- smiyc: the benchmark at its newest commit, on the maps as stored ---------------------------------

def smiyc_frames(seed, dtype, kind):
    """random_frames as maps of `dtype`: kind "unit" (scores in [0, 1]), "saturated" (many exact 1.0 and 0.0,
    as max softmax gives), "logit" (negative, around -10) or "energy" (far above 1)."""
    frames = []
    for score, label in random_frames(seed):
        if kind == "saturated":
            score = np.clip(1.4 * score - 0.2, 0, 1)
        elif kind == "logit":
            score = -20 * (1 - score)
        elif kind == "energy":
            score = 300 + 50 * score
        frames.append((score.astype(dtype), label))
    return frames


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("kind", ["unit", "saturated", "logit", "energy"])
def test_smiyc_agrees_with_the_benchmark(dtype, kind):
    frames = smiyc_frames(len(kind), dtype, kind)
    result = evaluate_frames(build_protocol("smiyc", 5, 3), lambda: frames)
    ref = smiyc_pixel_reference(frames)
    for key in ("auroc", "ap", "fpr95", "best_f1"):
        assert result[key] == pytest.approx(ref[key], abs=1e-12), key
    assert result["f1_threshold"] == ref["f1_threshold"]
    components = smiyc_component_reference(frames, ref["f1_threshold"], 5, 3)
    for key in ("siou_gt", "ppv", "mean_f1"):
        assert result["component"][key] == pytest.approx(components[key], abs=1e-12, nan_ok=True), key
    assert result["component"]["num_pred"] > 0 and result["benchmark_commit"] == "1c7804e"


def test_smiyc_rounds_to_float16_only_when_asked():
    # a float32 map is read as stored; stored_dtype=float16 gives the numbers of its float16 submission file
    frames = smiyc_frames(1, np.float32, "unit")
    as_stored = evaluate_frames(build_protocol("smiyc", 5, 3), lambda: frames)
    rounded = evaluate_frames(build_protocol("smiyc", 5, 3, stored_dtype=np.float16), lambda: frames)
    reference = evaluate_frames(build_protocol("smiyc", 5, 3),
                                lambda: [(s.astype(np.float16), l) for s, l in frames])
    assert rounded["ap"] == reference["ap"] and rounded["component"]["siou_gt"] == reference["component"]["siou_gt"]
    assert as_stored["ap"] != rounded["ap"]


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_smiyc_frame_bins_equal_the_benchmarks(dtype):
    # many ties and few pixels: the edges must be np.quantile's to the last bit, or pixels change bins
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 383, 384, 385, 5000):
        score = rng.choice(np.array([0.0, 0.1, 0.5, 0.5001, 0.9, 1.0], dtype=dtype), size)
        score[: size // 3] = rng.random(size // 3).astype(dtype)
        label = (rng.random(size) < 0.5).astype(np.uint8)
        protocol = build_protocol("smiyc", 1, 1)
        protocol.update(score[None], label[None])
        thresholds, tp_rel, fp_rel, _, _ = smiyc_frame_reference(score, label)
        assert np.array_equal(protocol.thresholds[0], thresholds)
        assert np.array_equal(protocol.tp_rel[0], tp_rel) and np.array_equal(protocol.fp_rel[0], fp_rel)


@pytest.mark.parametrize("case", ["one cell", "edges between a row's values"])
def test_smiyc_float32_cells_give_the_benchmarks_bins(case):
    # float32 frames are binned from a histogram of cells and a sort of the cells that hold wanted values:
    # values that differ only in their last bits share a cell; the in-distribution quantiles, interpolated
    # between 500 levels, fall into cells that hold only OoD values, which must be counted too
    rng = np.random.default_rng(7)
    if case == "one cell":
        score = np.float32(0.5) + rng.integers(-40, 40, (30, 40)) * np.finfo(np.float32).eps
        label = (rng.random((30, 40)) < 0.4).astype(np.uint8)
    else:
        label = np.ones((60, 100), np.uint8)
        label[:10] = 0
        score = rng.uniform(0.2, 0.8, (60, 100))
        score[:10] = np.repeat(rng.uniform(0.2, 0.8, 500), 2).reshape(10, 100)
    score = score.astype(np.float32)
    protocol = build_protocol("smiyc", 1, 1)
    protocol.update(score, label)
    thresholds, tp_rel, fp_rel, _, _ = smiyc_frame_reference(score, label)
    assert np.array_equal(protocol.thresholds[0], thresholds)
    assert np.array_equal(protocol.tp_rel[0], tp_rel) and np.array_equal(protocol.fp_rel[0], fp_rel)


def test_sort_entries_sorts_like_numpy():
    # the gathered entries of a float32 frame are sorted by a radix sort of two 16-bit digits
    rng = np.random.default_rng(8)
    for entries in (rng.integers(0, 2**31, 100_000), rng.integers(0, 2**16, 1000) << 15,
                    np.array([2**31 - 1, 0, 65535, 65536, 1]), np.arange(7)[::-1], np.zeros(0), np.ones(1)):
        entries = entries.astype(np.int32)
        expected = np.sort(entries)
        sort_entries(entries)
        assert np.array_equal(entries, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_smiyc_orders_every_kind_of_float_and_refuses_nan_and_infinity(dtype):
    # the histograms of float16 bit patterns and of float32 key buckets must sort negatives, -0.0 / +0.0,
    # subnormals and the largest finite values as np.quantile and np.histogram do (vmax - vmin overflows
    # float16 here)
    rng = np.random.default_rng(6)
    special = np.array([-65504, -3.5, -1e-7, -0.0, 0.0, 3e-8, 1e-7, 6.1e-5, 0.5, 0.50024414, 1.0, 6e4, 65504,
                        1e-40, -1e-40, 0.50000006, 3e38], dtype=np.float32)
    if dtype == np.float16:
        special = special[np.abs(special) < 65520]
    score = np.where(rng.random((40, 50)) < 0.5, rng.choice(special, (40, 50)),
                     rng.normal(0, 2, (40, 50))).astype(dtype)
    label = rng.choice(np.array([0, 1, 255], dtype=np.uint8), (40, 50), p=[0.6, 0.3, 0.1])
    protocol = build_protocol("smiyc", 1, 1)
    protocol.update(score, label)
    thresholds, tp_rel, fp_rel, _, _ = smiyc_frame_reference(score, label)
    assert np.array_equal(protocol.thresholds[0], thresholds)
    assert np.array_equal(protocol.tp_rel[0], tp_rel) and np.array_equal(protocol.fp_rel[0], fp_rel)
    for bad in (np.nan, np.inf):
        for dtype in (np.float16, np.float32):
            broken = score.astype(dtype)
            broken[label == 255] = bad  # on an ignored pixel it still means a broken map
            with pytest.raises(ValueError, match="NaN or infinity"):
                protocol.update(broken, label)


def test_smiyc_hand_case_threshold_from_the_reduced_curve():
    # two OoD pixels at 0.75, in-distribution at 0.25. Edges: 0.24 and 0.76 (vmin, vmax -/+ 0.01), 0.25, 0.75;
    # the curve (0, 0) [prepended, threshold 1.75], 0.75 (F1 1) twice, 0.25, 0.24. The best F1 is at the
    # edge 0.75 itself, and the components predict score > 0.75: nothing, so sIoU 0 and mean F1 0.
    label = np.array([[0, 0, 1, 1, 255]], dtype=np.uint8)
    score = np.array([[0.25, 0.25, 0.75, 0.75, 0.9]], dtype=np.float32)
    result = evaluate_frames(build_protocol("smiyc", 1, 1), lambda: [(score, label)])
    assert (result["auroc"], result["ap"], result["fpr95"], result["best_f1"]) == (1.0, 1.0, 0.0, 1.0)
    assert result["f1_threshold"] == 0.75
    component = result["component"]
    assert (component["siou_gt"], component["num_pred"], component["mean_f1"]) == (0.0, 0, 0.0)


def test_smiyc_ties_across_frames_follow_numpy_1_23s_sort():
    # both frames reach 1.0; the merged curve's first point counts the top bin of the frame that numpy 1.23's
    # argsort puts first after reversing: on these six thresholds (an insertion sort, stable) the last frame's.
    # Frame 2 first: its in-distribution 1.0 alone, precision 0: AP 0.5 * 0.5 + 0.5 * 2/3, AUROC 0.5.
    first = (np.array([[1.0, 0.0]], dtype=np.float32), np.array([[1, 0]], dtype=np.uint8))
    second = (np.array([[1.0, 0.5]], dtype=np.float32), np.array([[0, 1]], dtype=np.uint8))
    result = evaluate_frames(build_protocol("smiyc", 1, 1), lambda: [first, second])
    assert result["ap"] == pytest.approx(0.25 + 1 / 3, abs=1e-15) and result["auroc"] == 0.5
    assert result["f1_threshold"] == 0.5 and result["best_f1"] == pytest.approx(0.8)
    # score > 0.5: frame 1's object found (sIoU 1, PPV 1), frame 2's missed and its 1.0 road pixel a false one
    assert (result["component"]["siou_gt"], result["component"]["ppv"], result["component"]["mean_f1"]) == (0.5, 0.5, 0.5)
    reversed_order = evaluate_frames(build_protocol("smiyc", 1, 1), lambda: [second, first])
    assert reversed_order["ap"] == pytest.approx(0.5 + 1 / 3, abs=1e-15) and reversed_order["auroc"] == 0.75


def test_smiyc_skips_frames_without_pixels_outside_the_void():
    frames = smiyc_frames(2, np.float16, "unit")
    void = (frames[0][0], np.full(frames[0][1].shape, 255, dtype=np.uint8))
    with_void = evaluate_frames(build_protocol("smiyc", 5, 3), lambda: [void, *frames])
    without = evaluate_frames(build_protocol("smiyc", 5, 3), lambda: frames)
    assert with_void["ap"] == without["ap"] and with_void["num_frames_all_void"] == 1
    assert with_void["num_frames"] == len(frames)


def test_numpy_1_23_argsort_orders_ties_as_recorded():
    # np.argsort of numpy 1.23.3 on these values (recorded there): equal values in its introsort's order
    values = np.array([0.5, 1.0, 0.25, 1.0, 0.5, 0.5, 1.0, 0.25, 0.75, 1.0, 0.5, 0.25, 1.0, 0.75, 0.5, 1.0, 0.25,
                       0.5, 1.0, 0.75])
    assert argsort_numpy123(values).tolist() == [2, 16, 7, 11, 0, 17, 4, 5, 14, 10, 13, 19, 8, 12, 6, 15, 3, 1, 18, 9]


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


def test_exact_pixel_metrics_follow_every_update_and_compute_leaves_them_unchanged():
    frames = random_frames(6)
    protocol = build_protocol("exact", 5, 3)
    for score, label in frames[:2]:
        protocol.update(score, label)
    first = protocol.compute()
    for score, label in frames[2:]:
        protocol.update(score, label)
    again = evaluate_frames(build_protocol("exact", 5, 3), lambda: frames)
    assert first["num_in"] < again["num_in"]
    components = protocol.components()
    for score, label in frames:
        components.update(score, label)
    result = protocol.compute()
    assert "component" in result and "component" not in protocol.pixel_result()
    assert result.pop("component") == again.pop("component")
    np.testing.assert_equal(result, again)


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


def test_numpy_1_23_argsort_orders_5000_tied_values_as_recorded():
    # 5000 values on 97 levels run many partitions of the introsort; the permutation's SHA-256 was recorded with
    # numpy 1.23.3's np.argsort, and numpy 2's own argsort orders these ties otherwise
    values = (np.arange(5000) * 7919 % 97).astype(np.float64)
    order = argsort_numpy123(values)
    assert hashlib.sha256(order.tobytes()).hexdigest() == \
        "901c6fcf7c29d318a23fa795d2b805e99ab83a3741e13de3ee1b507da6b1feb7"
    assert (np.diff(values[order]) >= 0).all()
