"""Segments of any method's anomaly score map and their metrics computed from the score map alone.

A segment is an 8-connected component of the pixels whose score is >= the threshold, void pixels
removed (as MetaSeg segments the entropy). Components are numbered 1..n in the order a row-major scan
meets their first pixel, and a segment pixel is boundary when one of its in-image 8 neighbours lies
outside the segment, so segments, ids and parts equal those of `compute_metrics_components` on the same
mask, and the softmax's MetaSeg metrics of the same segments can be added beside these (same order).

Metrics per segment (the "score_map" family; the `_in` / `_bd` values are 0 for an empty part):
  S, S_in, S_bd, S_rel = S / S_bd, S_rel_in = S_in / S_bd     sizes, as MetaSeg (0 when S_bd = 0)
  score, score_in, score_bd                                   mean score of the segment and its parts
  score_var, score_var_in, score_var_bd                       population variances
  score_max, score_max_in, score_max_bd                       maxima
  score_rel = score * S_rel, score_rel_in = score_in * S_rel_in,
  score_var_rel = score_var * S_rel, score_var_rel_in = score_var_in * S_rel_in
  mean_x, mean_y                                              centroid (row, column), as MetaSeg
  bbox_h, bbox_w, fill = S / (bbox_h * bbox_w)                shape of the bounding box
Targets (need the ground truth): iou (MetaSeg's adjusted IoU with the ground-truth OoD region) and
iou0 (1 when the segment holds no ground-truth OoD pixel: a false positive).
"""
import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
SHIFTS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]


def at_least(score, threshold):
    """(H, W) bool: score >= threshold compared exactly (as in float64), for float32 scores.

    A threshold that is no float32 value (0.1) is replaced by the smallest float32 above it, so a
    float32 comparison selects exactly the pixels whose value is >= the real number."""
    score = np.asarray(score, dtype=np.float32)
    t32 = np.float32(threshold)
    if float(t32) < threshold:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return score >= t32


def label_segments(mask):
    """8-connected components of `mask` (H, W) bool: (H, W) int32 with +id interior, -id boundary, and n."""
    labels, n = ndimage.label(mask, structure=EIGHT_CONNECTED)
    # out-of-image neighbours count as inside, so only in-image neighbours can make a boundary pixel
    interior = ndimage.binary_erosion(mask, structure=EIGHT_CONNECTED, border_value=1)
    labels = labels.astype(np.int32)
    labels[mask & ~interior] *= -1
    return labels, n


def _divide(a, b):
    return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)


def _part_statistics(values, ids, n):
    """Sum count, mean, population variance and max of `values` grouped by `ids` (1..n), 0 for empty groups."""
    count = np.bincount(ids, minlength=n + 1)[1:].astype(np.float64)
    mean = _divide(np.bincount(ids, weights=values, minlength=n + 1)[1:], count)
    centred = values - np.concatenate([[0.0], mean])[ids]
    var = _divide(np.bincount(ids, weights=centred * centred, minlength=n + 1)[1:], count)
    top = np.full(n + 1, -np.inf)
    np.maximum.at(top, ids, values)
    top = np.where(count > 0, top[1:], 0.0)
    return count, mean, var, top


def score_segment_metrics(score, void, threshold):
    """Segments of one score map and their score-map metrics.

    score: (H, W) float (used as float32), higher = more anomalous; void: (H, W) bool, pixels never
    in a segment; threshold: float, a pixel with score >= threshold is a segment pixel.
    Returns (metrics, components): metrics maps each name of the module docstring (without the
    targets) to a float64 array with one value per segment, in id order; components is (H, W) int32,
    +id interior, -id boundary, 0 elsewhere.
    """
    score = np.asarray(score, dtype=np.float32)
    void = np.asarray(void, dtype=bool)
    if score.ndim != 2 or void.shape != score.shape:
        raise ValueError(f"score and void must be (H, W) arrays of one shape, got {score.shape} and {void.shape}")
    if np.isnan(score).any():
        raise ValueError("the score map holds NaN values")
    components, n = label_segments(at_least(score, threshold) & ~void)
    inside = components != 0
    ids = np.abs(components[inside])
    values = score[inside].astype(np.float64)
    boundary = components[inside] < 0
    s, mean, var, top = _part_statistics(values, ids, n)
    s_in, mean_in, var_in, top_in = _part_statistics(values[~boundary], ids[~boundary], n)
    s_bd, mean_bd, var_bd, top_bd = _part_statistics(values[boundary], ids[boundary], n)
    s_rel, s_rel_in = _divide(s, s_bd), _divide(s_in, s_bd)
    rows, cols = np.nonzero(inside)
    boxes = ndimage.find_objects(np.abs(components), max_label=n)
    bbox_h = np.array([b[0].stop - b[0].start for b in boxes], dtype=np.float64)
    bbox_w = np.array([b[1].stop - b[1].start for b in boxes], dtype=np.float64)
    metrics = {
        "S": s, "S_in": s_in, "S_bd": s_bd, "S_rel": s_rel, "S_rel_in": s_rel_in,
        "score": mean, "score_in": mean_in, "score_bd": mean_bd,
        "score_var": var, "score_var_in": var_in, "score_var_bd": var_bd,
        "score_max": top, "score_max_in": top_in, "score_max_bd": top_bd,
        "score_rel": mean * s_rel, "score_rel_in": mean_in * s_rel_in,
        "score_var_rel": var * s_rel, "score_var_rel_in": var_in * s_rel_in,
        "mean_x": _divide(np.bincount(ids, weights=rows, minlength=n + 1)[1:], s),
        "mean_y": _divide(np.bincount(ids, weights=cols, minlength=n + 1)[1:], s),
        "bbox_h": bbox_h, "bbox_w": bbox_w, "fill": _divide(s, bbox_h * bbox_w),
    }
    return metrics, components


def _touching_pairs(a, b):
    """Unique (id of a, id of b) pairs of 8-adjacent pixels with a > 0 and b > 0: (P, 2) int64."""
    h, w = a.shape
    pairs = []
    for di, dj in SHIFTS:
        # pixel (i, j) of `a` against pixel (i + di, j + dj) of `b`
        sa = a[max(-di, 0):h - max(di, 0), max(-dj, 0):w - max(dj, 0)]
        sb = b[max(di, 0):h - max(-di, 0), max(dj, 0):w - max(-dj, 0)]
        both = (sa > 0) & (sb > 0)
        pairs.append(np.stack([sa[both], sb[both]], axis=1).astype(np.int64))
    return np.unique(np.concatenate(pairs), axis=0)


def segment_targets(components, gt_ood):
    """MetaSeg's targets of the segments of `components` ((H, W) int32, +-id) against `gt_ood` ((H, W) bool).

    iou = |segment & gt| / (|segment| + sizes of the 8-connected regions of gt & ~(all segments) that
    touch the segment); iou0 = 1 when the segment holds no ground-truth OoD pixel.
    Returns {"iou": (n,) float64, "iou0": (n,) int64}.
    """
    ids = np.abs(components)
    n = int(ids.max(initial=0))
    size = np.bincount(ids.ravel(), minlength=n + 1)[1:]
    intersection = np.bincount(ids[gt_ood], minlength=n + 1)[1:]
    rest, _ = ndimage.label(gt_ood & (ids == 0), structure=EIGHT_CONNECTED)
    rest_size = np.bincount(rest.ravel())
    union_rest = np.zeros(n + 1)
    pairs = _touching_pairs(ids, rest)
    np.add.at(union_rest, pairs[:, 0], rest_size[pairs[:, 1]])
    return {"iou": _divide(intersection, size + union_rest[1:]), "iou0": (intersection == 0).astype(np.int64)}


def ground_truth_components(gt_ood, mask):
    """Ground-truth OoD components ((H, W) int32, +-id) and, per component, its size S and iou0
    (1 when no pixel of `mask`, the segment pixels, lies on it: a missed object)."""
    components, n = label_segments(np.asarray(gt_ood, dtype=bool))
    ids = np.abs(components)
    size = np.bincount(ids.ravel(), minlength=n + 1)[1:]
    hit = np.bincount(ids[np.asarray(mask, dtype=bool)], minlength=n + 1)[1:]
    return components, {"S": size.astype(np.float64), "iou0": (hit == 0).astype(np.int64)}
