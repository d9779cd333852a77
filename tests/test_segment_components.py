import numpy as np
import pytest
from scipy import ndimage

from src.evaluation.component_metrics import ComponentMetrics
from src.evaluation.segment_components import SegmentComponents, best_cut, image_table
from src.external_maps import meta_filtered_score, removal_region, filtered_score

T = 0.7
EIGHT = np.ones((3, 3), dtype=bool)


def random_image(rng, shape=(48, 64)):
    """(score, label, segment ids) of a random frame: blobs of objects, void and high scores; the segments are
    the 8-connected components of score > T off the void (no score equals T)."""
    label = np.zeros(shape, np.uint8)
    label[ndimage.gaussian_filter(rng.random(shape), 3) > 0.53] = 1
    label[rng.random(shape) < 0.02] = 255
    score = ndimage.gaussian_filter(rng.random(shape), 2).astype(np.float32)
    score = (score - score.min()) / (score.max() - score.min())
    score[score == np.float32(T)] = 0.0
    segments, _ = ndimage.label((score > T) & (label != 255), structure=EIGHT)
    return score, label, segments


@pytest.mark.parametrize("seed", range(4))
def test_metrics_of_any_kept_set_equal_component_metrics_of_the_map_without_the_removed(seed):
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(5)]
    table = SegmentComponents([image_table(seg, label, 3, 4) for _, label, seg in images])
    kept = rng.random(len(table)) < 0.6
    reference = ComponentMetrics(T, 3, 4)
    offset = 0
    for score, label, seg in images:
        n = seg.max()
        removed = np.isin(seg, np.flatnonzero(~kept[offset:offset + n]) + 1)
        reference.update(np.where(removed, 0, score).astype(np.float32), label)
        offset += n
    expected, got = reference.compute(), table.metrics(kept)
    assert got["tp"] == expected["tp"] and got["fp"] == expected["fp"] and got["num_pred"] == expected["num_pred"]
    for key in ("siou_gt", "ppv", "mean_f1"):
        assert got[key] == pytest.approx(expected[key], abs=1e-12)
    only = table.metrics(kept, images=[1, 3])  # the images a training fold holds
    sub = ComponentMetrics(T, 3, 4)
    for i in (1, 3):
        score, label, seg = images[i]
        offset = int(np.sum([images[j][2].max() for j in range(i)]))
        removed = np.isin(seg, np.flatnonzero(~kept[offset:offset + seg.max()]) + 1)
        sub.update(np.where(removed, 0, score).astype(np.float32), label)
    assert only["mean_f1"] == pytest.approx(sub.compute()["mean_f1"], abs=1e-12)


def hand_made():
    """One 10 x 20 frame: an object at columns 2-5 found by segment 1, false segments 2 (6 px) and 3 (4 px)."""
    label = np.zeros((10, 20), np.uint8)
    label[2:6, 2:6] = 1
    seg = np.zeros((10, 20), np.int32)
    seg[2:6, 2:6] = 1
    seg[2:4, 10:13] = 2
    seg[7:9, 15:17] = 3
    return seg, label


def test_the_perfect_filter_keeps_the_object_and_no_false_positive():
    seg, label = hand_made()
    table = SegmentComponents([image_table(seg, label, 1, 1)])
    unfiltered = table.metrics(np.ones(3, bool))
    assert unfiltered["tp"] == [1] * 11 and unfiltered["fp"] == [2] * 11  # F1 = 2 / (2 + 2) = 0.5
    assert unfiltered["mean_f1"] == pytest.approx(0.5)
    perfect = table.metrics(np.array([True, False, False]))
    assert perfect["tp"] == [1] * 11 and perfect["fp"] == [0] * 11 and perfect["mean_f1"] == 1.0
    # the cut search finds the perfect filter when the probabilities rank the false segments first; a lower cut
    # that is as good (0.1 would remove the object) is not taken
    assert best_cut(table, np.array([0.1, 0.8, 0.6]), [0]) == 0.6
    assert best_cut(table, np.array([0.5, 0.8, 0.6]), [0]) == 0.6
    assert best_cut(table, np.array([0.9, 0.8, 0.6]), [0]) == np.inf  # any removal takes the object first


def test_segsize_drops_small_segments_from_the_counts():
    seg, label = hand_made()
    table = SegmentComponents([image_table(seg, label, 5, 1)])  # segment 3 (4 px) is below segsize
    assert table.metrics(np.ones(3, bool))["fp"] == [1] * 11


def test_a_removed_blob_leaves_no_component_down_to_the_reach_but_a_kept_ones_rim_stays():
    score = np.zeros((12, 30), np.float32)
    score[2:9, 2:9] = 0.5  # rim of the false blob, below t
    score[4:7, 4:7] = 0.9  # its segment
    score[2:9, 15:26] = 0.5  # rim shared by a removed and a kept segment
    score[4:7, 16:19] = 0.9
    score[4:7, 22:25] = 0.9
    seg, _ = ndimage.label(score >= T, structure=EIGHT)
    removed = np.array([True, True, False])  # ids in scan order: the lone blob, then the pair's left, right
    void = np.zeros_like(score, bool)
    region = removal_region(score, seg, removed, void, 0.4)
    assert region[2:9, 2:9].all() and region[4:7, 16:19].all()
    assert not region[2:9, 19:26].any() and not region[2, 15]  # the pair's rim stays, only its removed segment goes
    out = meta_filtered_score(score, seg, removed, void, 0.0, T, 3 / 7)  # floor 0.7 - 3/7 * 0.7 = 0.4
    assert out[2:9, 2:9].max() < 0.4 and out[2:9, 2:9].min() >= 0.2  # below the floor, above (low + floor) / 2
    assert np.array_equal(out[seg == 3], score[seg == 3]) and out[2, 15] == score[2, 15]
    labels, n = ndimage.label(out > 0.45, structure=EIGHT)
    assert n == 1  # a leaderboard threshold of 0.45 sees the kept pair's blob alone
    assert meta_filtered_score(score, seg, removed, void, 0.0, T, 0.0).tobytes() == \
        filtered_score(score, np.isin(seg, [1, 2]), 0.0, T).tobytes()  # reach 0: today's rule


def test_void_pixels_do_not_connect_a_removed_blob_to_its_neighbours():
    score = np.full((5, 9), 0.5, np.float32)
    score[2, 1] = score[2, 7] = 0.9
    void = np.zeros_like(score, bool)
    void[:, 4] = True
    seg, _ = ndimage.label((score >= T) & ~void, structure=EIGHT)
    region = removal_region(score, seg, np.array([True, False]), void, 0.4)
    assert region[:, :4].all() and not region[:, 4:].any()
