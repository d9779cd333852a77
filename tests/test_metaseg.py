import os

import numpy as np
import pytest
from scipy import ndimage
from scipy.special import softmax

from src.metaseg.metrics import compute_metrics_components, compute_metrics_mask
from src.metaseg.segment_search import entropy_mask, load_segments, save_segments, segment_search
from tests.metaseg_reference import reference_gt_metrics, reference_segment_metrics

# Outputs of the original MetaSeg code (copied from the project's shared/golden; README.md there).
GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden")
OOD = 2  # LostAndFound train ids: 1 road, 2 OoD, 0 non-hazard, 255 void


def golden(case):
    path = os.path.join(GOLDEN, f"metaseg_case{case}.npz")
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def assert_golden_metrics(metrics, z, side):
    keys = [name.split("/", 1)[1] for name in z if name.startswith(side + "/")]
    assert list(metrics) == keys
    for key in keys:
        ours, expected = np.asarray(metrics[key], dtype=np.float64), z[f"{side}/{key}"]
        if key.split("_")[0] in ("E", "D", "V"):
            # the original (under NumPy 2) summed these in float32 over up to ~10^4 pixels, we in float64
            np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0, err_msg=key)


@pytest.mark.parametrize("case", [0, 1])
def test_compute_metrics_components_reproduces_golden(case):
    z = golden(case)
    metrics, components = compute_metrics_components(z["probs"], z["gt_train"], z["ood_mask"], OOD)
    np.testing.assert_array_equal(components, z["components"])
    assert_golden_metrics(metrics, z, "pred")


@pytest.mark.parametrize("case", [0, 1])
def test_compute_metrics_mask_reproduces_golden(case):
    z = golden(case)
    metrics, gt_components = compute_metrics_mask(z["probs"], z["ood_mask"], z["gt_train"], z["gt_label"], OOD)
    np.testing.assert_array_equal(gt_components, z["gt_components"])
    assert_golden_metrics(metrics, z, "gt")


@pytest.mark.parametrize("case", [0, 1])
def test_segment_search_reproduces_golden_mask_and_maps_from_float16(case):
    z = golden(case)
    np.testing.assert_array_equal(entropy_mask(z["probs"], 0.7), z["ood_mask"])
    probs16 = z["probs"].astype(np.float16)
    result = segment_search(probs16, z["gt_train"], z["gt_label"], 0.7, OOD)
    mask = entropy_mask(probs16.astype(np.float32), 0.7)
    metrics, components = compute_metrics_components(probs16.astype(np.float32), z["gt_train"], mask, OOD)
    assert result["metrics"] == metrics
    np.testing.assert_array_equal(result["components"], components)
    # float16 rounding moves hardly any pixel across the threshold, so the segments stay close to golden
    assert np.mean((result["components"] != 0) != (z["components"] != 0)) < 0.01


def blobs(rng, h, w, fraction):
    """Random smooth blobs covering about `fraction` of an (h, w) image."""
    noise = ndimage.gaussian_filter(rng.normal(size=(h, w)), sigma=rng.uniform(0.5, 3))
    return noise > np.quantile(noise, 1 - fraction)


def random_scene(rng):
    h, w = rng.integers(1, 41, size=2)
    nclasses = int(rng.choice([3, 19]))
    if rng.random() < 0.3:  # few distinct logits: exact ties between classes
        logits = rng.integers(0, 3, size=(nclasses, h, w)).astype(float)
    else:
        logits = rng.normal(size=(nclasses, h, w)) * rng.uniform(0.5, 4)
    probs = softmax(logits, axis=0).astype(np.float32)
    ood_mask = blobs(rng, h, w, rng.uniform(0, 0.4)) | (rng.random((h, w)) < 0.03)
    gt_train = np.ones((h, w), dtype=np.uint8)
    gt_train[rng.random((h, w)) < 0.05] = 0
    gt_train[blobs(rng, h, w, rng.uniform(0, 0.3))] = OOD
    if rng.random() < 0.5:
        x0, y0 = rng.integers(0, h), rng.integers(0, w)
        gt_train[x0:x0 + rng.integers(1, h + 1), y0:y0 + rng.integers(1, w + 1)] = 255
    gt_label = rng.integers(0, 44, size=(h, w)).astype(np.uint8)
    return probs, gt_train, gt_label, ood_mask.astype(np.uint8)


def special_scenes(rng):
    probs = softmax(rng.normal(size=(19, 7, 9)), axis=0).astype(np.float32)
    road = np.ones((7, 9), dtype=np.uint8)
    labels = np.zeros((7, 9), dtype=np.uint8)
    yield probs, road, labels, np.zeros((7, 9), np.uint8)  # no segments
    yield probs, np.full((7, 9), OOD, np.uint8), labels, np.zeros((7, 9), np.uint8)  # all missed
    yield probs, road, labels, np.ones((7, 9), np.uint8)  # one segment, no boundary
    yield probs[:, :1, :1], road[:1, :1], labels[:1, :1], np.ones((1, 1), np.uint8)


def assert_matches_reference(ours, reference):
    assert list(ours) == list(reference)
    for key, expected in reference.items():
        np.testing.assert_allclose(np.asarray(ours[key], dtype=np.float64), expected,
                                   rtol=1e-9, atol=1e-12, err_msg=key)


def test_compiled_metrics_match_numpy_reference_on_random_scenes():
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng) for _ in range(40)] + list(special_scenes(rng))
    seen = dict(border=False, one_pixel=False, empty=False, void_in_mask=False, missed_gt=False,
                true_and_false=False, no_boundary=False)
    for probs, gt_train, gt_label, ood_mask in scenes:
        metrics, components = compute_metrics_components(probs, gt_train, ood_mask, OOD)
        expected, expected_components = reference_segment_metrics(probs, gt_train, ood_mask, OOD)
        np.testing.assert_array_equal(components, expected_components)
        assert_matches_reference(metrics, expected)

        gt_metrics, gt_components = compute_metrics_mask(probs, ood_mask, gt_train, gt_label, OOD)
        expected, expected_components = reference_gt_metrics(probs, ood_mask, gt_train, gt_label, OOD)
        np.testing.assert_array_equal(gt_components, expected_components)
        assert_matches_reference(gt_metrics, expected)

        edges = np.concatenate([components[0], components[-1], components[:, 0], components[:, -1]])
        seen["border"] |= bool(edges.any())
        seen["one_pixel"] |= 1 in metrics["S"]
        seen["empty"] |= not metrics["S"]
        seen["void_in_mask"] |= bool((ood_mask.astype(bool) & (gt_train == 255)).any())
        seen["missed_gt"] |= 1 in gt_metrics["iou0"]
        seen["true_and_false"] |= 0 in metrics["iou0"] and 1 in metrics["iou0"]
        seen["no_boundary"] |= 0 in metrics["S_bd"]
    assert all(seen.values()), seen


def test_float16_probs_give_exactly_the_metrics_of_their_float32_copy():
    """The segment search passes the cache's float16 probs, which the scan reads as is."""
    rng = np.random.default_rng(4)
    scenes = [random_scene(rng) for _ in range(10)]
    scenes += [(golden(case)["probs"], golden(case)["gt_train"], golden(case)["gt_label"], golden(case)["ood_mask"])
               for case in (0, 1)]
    for probs, gt_train, gt_label, ood_mask in scenes:
        probs16 = probs.astype(np.float16)
        probs16[0, 0, 0], probs16[1, -1, -1] = 0, 6e-8  # zero and a subnormal
        probs32 = probs16.astype(np.float32)
        for ours, expected in [
                (compute_metrics_components(probs16, gt_train, ood_mask, OOD),
                 compute_metrics_components(probs32, gt_train, ood_mask, OOD)),
                (compute_metrics_mask(probs16, ood_mask, gt_train, gt_label, OOD),
                 compute_metrics_mask(probs32, ood_mask, gt_train, gt_label, OOD))]:
            assert ours[0] == expected[0]
            np.testing.assert_array_equal(ours[1], expected[1])


def test_every_finite_float16_value_is_read_as_numpy_converts_it():
    # one-pixel segments on a grid of step 2, so cprob0 of each is its pixel's class-0 value
    bits = np.arange(2 ** 16, dtype=np.uint16)
    values = bits.view(np.float16)[np.isfinite(bits.view(np.float16))]  # 63488 = 248 x 256
    probs = np.zeros((2, 2 * 248, 2 * 256), dtype=np.float16)
    probs[0, ::2, ::2] = values.reshape(248, 256)
    grid = np.zeros(probs.shape[1:], dtype=np.uint8)
    grid[::2, ::2] = 1
    metrics, _ = compute_metrics_components(probs, np.ones_like(grid), grid, OOD)
    assert metrics["cprob0"] == values.astype(np.float32).astype(np.float64).tolist()


def test_adjusted_iou_and_ground_truth_side_by_hand():
    probs = softmax(np.random.default_rng(1).normal(size=(19, 4, 8)), axis=0).astype(np.float32)
    gt_train = np.ones((4, 8), dtype=np.uint8)
    gt_train[1, 3:7] = gt_train[2, 6] = OOD  # ground-truth object A, half of it predicted
    gt_train[3, 0] = OOD  # object B, missed
    gt_train[0, 0] = 255
    gt_label = np.full((4, 8), 9, dtype=np.uint8)
    gt_label[1, 3] = 7
    mask = np.zeros((4, 8), dtype=np.uint8)
    mask[1, 1:5] = 1  # segment 1: hits A on (1, 3), (1, 4)
    mask[3, 7] = 1  # segment 2: false positive, next to A's unpredicted pixel (2, 6)
    mask[0, 0] = 1  # void: no segment

    metrics, components = compute_metrics_components(probs, gt_train, mask, OOD)
    assert metrics["S"] == [4, 1] and metrics["S_bd"] == [4, 1]
    # union of segment 1: its 4 pixels + A's unpredicted pixels (1, 5), (1, 6), (2, 6)
    assert metrics["iou"] == [2 / 7, 0.0] and metrics["iou0"] == [0, 1]
    assert metrics["mean_x"] == [1.0, 3.0] and metrics["mean_y"] == [2.5, 7.0]
    expected = np.zeros((4, 8), dtype=int)
    expected[1, 1:5], expected[3, 7] = -1, -2
    np.testing.assert_array_equal(components, expected)

    gt_metrics, gt_components = compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)
    # union of A: its 5 pixels + predicted non-OoD pixels touching it: (1, 1), (1, 2), (3, 7)
    assert gt_metrics["iou"] == [2 / 8, 0.0] and gt_metrics["iou0"] == [0, 1]
    assert gt_metrics["rec"] == [2 / 5, 0.0] and gt_metrics["S"] == [5, 1]
    assert gt_metrics["label_class"] == [7, 9] and gt_metrics["train_class"] == [255, 255]
    assert gt_components[1, 3] == -1 and gt_components[3, 0] == -2


def test_block_segment_by_hand():
    nclasses = 19
    probs = np.full((nclasses, 5, 5), 0.1 / 18, dtype=np.float32)
    probs[3] = 0.9  # outside the block every pixel predicts class 3
    probs[:, 1:4, 1:4] = 1 / nclasses  # inside, the uniform distribution
    mask = np.zeros((5, 5), dtype=np.uint8)
    mask[1:4, 1:4] = 1
    metrics, components = compute_metrics_components(probs, np.ones((5, 5), np.uint8), mask, OOD)
    assert (metrics["S"], metrics["S_in"], metrics["S_bd"]) == ([9], [1], [8])
    assert metrics["S_rel"] == [9 / 8] and metrics["S_rel_in"] == [1 / 8]
    assert components[2, 2] == 1 and (components[1:4, 1:4] == -1).sum() == 8
    # 4 corners x 5 outside neighbours + 4 edges x 3, all predicting class 3
    assert metrics["ndist3"] == [1.0] and sum(metrics[f"ndist{c}"][0] for c in range(nclasses)) == 1.0
    np.testing.assert_allclose(metrics["E"], [1.0], atol=1e-5)
    np.testing.assert_allclose(metrics["E_var"], [0.0], atol=1e-12)
    np.testing.assert_allclose(metrics["D"], [1.0], atol=1e-6)
    np.testing.assert_allclose(metrics["V_rel"], [(1 - 1 / nclasses) * 9 / 8], atol=1e-6)
    np.testing.assert_allclose(metrics["cprob3"], [1 / nclasses], atol=1e-7)
    assert metrics["iou"] == [0.0] and metrics["iou0"] == [1]


def test_more_than_32767_segments():
    size = 400  # isolated pixels on a grid of step 2: (size / 2)^2 = 40000 one-pixel segments
    probs = softmax(np.random.default_rng(2).normal(size=(19, size, size)), axis=0).astype(np.float32)
    grid = np.zeros((size, size), dtype=np.uint8)
    grid[::2, ::2] = 1
    gt_train = np.where(grid == 1, OOD, 1).astype(np.uint8)
    metrics, components = compute_metrics_components(probs, gt_train, grid, OOD)
    n = (size // 2) ** 2
    assert len(metrics["S"]) == n and set(metrics["S"]) == {1} and set(metrics["iou"]) == {1.0}
    ids = np.arange(1, n + 1).reshape(size // 2, size // 2)
    np.testing.assert_array_equal(components[::2, ::2], -ids)
    assert metrics["mean_x"][-1] == size - 2 and metrics["mean_y"][-1] == size - 2
    last = probs[:, -2, -2].astype(np.float64)
    np.testing.assert_allclose(metrics["cprob5"][-1], last[5], rtol=1e-7)
    np.testing.assert_allclose(metrics["V"][-1], 1 - last.max(), rtol=1e-6)
    gt_metrics, gt_components = compute_metrics_mask(probs, grid, gt_train, gt_train, OOD)
    assert len(gt_metrics["S"]) == n and set(gt_metrics["rec"]) == {1.0}
    np.testing.assert_array_equal(gt_components, components)


def test_bad_input_is_a_clear_error():
    probs = np.full((19, 4, 5), 1 / 19, dtype=np.float32)
    gt = np.ones((4, 5), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"probs must be \(C, H, W\)"):
        compute_metrics_components(probs[0], gt, gt, OOD)
    with pytest.raises(ValueError, match="gt_train must have the image shape"):
        compute_metrics_components(probs, gt[:3], gt, OOD)
    with pytest.raises(ValueError, match="gt_label must have the image shape"):
        compute_metrics_mask(probs, gt, gt, gt.T, OOD)
    with pytest.raises(ValueError, match="ood_index is required"):
        compute_metrics_components(probs, gt, gt, None)


@pytest.mark.parametrize("threshold", [0.5, 1.1])  # segments, and none at all
def test_save_load_round_trip(tmp_path, threshold):
    probs, gt_train, gt_label, _ = random_scene(np.random.default_rng(3))
    result = segment_search(probs, gt_train, gt_label, threshold, OOD)
    path = tmp_path / "0000.npz"
    save_segments(path, result)
    loaded = load_segments(path)
    assert os.listdir(tmp_path) == ["0000.npz"]
    assert sorted(loaded) == sorted(result)
    for side in ("metrics", "gt_metrics"):
        assert loaded[side] == result[side]
        for key, values in result[side].items():
            assert [type(v) for v in loaded[side][key]] == [type(v) for v in values], key
    for name in ("components", "gt_components"):
        assert loaded[name].dtype == result[name].dtype
        np.testing.assert_array_equal(loaded[name], result[name])


def test_load_segments_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, probs=np.zeros(3))
    with pytest.raises(ValueError, match="not written by save_segments"):
        load_segments(path)
