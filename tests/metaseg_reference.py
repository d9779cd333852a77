"""Slow, obviously correct NumPy version of the MetaSeg segment metrics (SPEC section 4).

Written from the definitions, one segment at a time with whole-image boolean masks, to check the
compiled `src/metaseg/metrics.pyx` against. Connected components come from `scipy.ndimage.label`
(8-connectivity), renumbered so that segment 1 is the one whose first pixel comes first in a
row-major scan.
"""
import numpy as np
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)
EPS = np.finfo(np.float32).eps


def components_in_scan_order(mask):
    """Masks of the 8-connected components of `mask` (H, W) bool, ordered by their first pixel."""
    labels, n = ndimage.label(mask, structure=EIGHT)
    first_pixel = [np.flatnonzero(labels == k)[0] for k in range(1, n + 1)]
    return [labels == k for k in 1 + np.argsort(first_pixel)]


def outside_neighbour_counts(segment):
    """Per pixel (H, W) int: how many of its in-image 8 neighbours lie outside `segment`."""
    inside = np.pad(segment, 1, constant_values=True)
    h, w = segment.shape
    counts = np.zeros((h, w), dtype=int)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            neighbour_inside = inside[1 + dx:1 + dx + h, 1 + dy:1 + dy + w]
            counts += ~neighbour_inside
    return counts


def outside_neighbour_classes(segment, pred, nclasses):
    """Histogram (nclasses,) of pred over all (segment pixel, in-image outside neighbour) pairs."""
    h, w = segment.shape
    hist = np.zeros(nclasses, dtype=int)
    for x, y in zip(*np.nonzero(segment)):
        for xx in range(max(x - 1, 0), min(x + 2, h)):
            for yy in range(max(y - 1, 0), min(y + 2, w)):
                if not segment[xx, yy]:
                    hist[pred[xx, yy]] += 1
    return hist


def adjusted_iou(segment, other_truth, other_pred):
    """IoU of `segment` with `other_truth`, where the union adds only those pixels of
    other_truth & ~other_pred that are 8-connected (through such pixels) to the segment.
    Returns (iou, intersection)."""
    intersection = int((segment & other_truth).sum())
    if intersection == 0:
        return 0.0, 0
    near = ndimage.binary_dilation(segment, structure=EIGHT)
    rest, _ = ndimage.label(other_truth & ~other_pred, structure=EIGHT)
    touched = np.unique(rest[near & (rest > 0)])
    union = int(segment.sum()) + int(np.isin(rest, touched).sum())
    return intersection / union, intersection


def heatmaps(probs):
    """Normalised entropy, probability margin and variation ratio, each (H, W) float64."""
    p = probs.astype(np.float64)
    nclasses = p.shape[0]
    entropy = -np.sum(p * np.log(p + EPS), axis=0) / np.log(nclasses)
    top2 = np.sort(p, axis=0)[-2:]
    return {"E": entropy, "D": 1 - top2[1] + top2[0], "V": 1 - top2[1]}


def masks(gt_train, ood_mask, ood_index):
    """Predicted OoD without void pixels, and ground-truth OoD, each (H, W) bool."""
    prediction = (np.asarray(ood_mask) != 0) & (gt_train != 255)
    truth = np.isin(gt_train, ood_index)
    return prediction, truth


def ratio(a, b):
    return a / b if b > 0 else 0.0


def reference_segment_metrics(probs, gt_train, ood_mask, ood_index):
    """Metrics of the predicted OoD segments: (dict key -> (n,) float64, components (H, W) int)."""
    prediction, truth = masks(gt_train, ood_mask, ood_index)
    nclasses = probs.shape[0]
    pred = np.argmax(probs, axis=0)
    maps = heatmaps(probs)
    rows, cols = np.indices(gt_train.shape)
    rows_out = []
    components = np.zeros(gt_train.shape, dtype=int)
    for k, segment in enumerate(components_in_scan_order(prediction), start=1):
        boundary = segment & (outside_neighbour_counts(segment) > 0)
        interior = segment & ~boundary
        components[interior], components[boundary] = k, -k
        s, s_in, s_bd = int(segment.sum()), int(interior.sum()), int(boundary.sum())
        iou, intersection = adjusted_iou(segment, truth, prediction)
        m = {"iou": iou, "iou0": float(intersection == 0), "prc": 0.0,
             "mean_x": rows[segment].mean(), "mean_y": cols[segment].mean()}
        s_rel, s_rel_in = ratio(s, s_bd), ratio(s_in, s_bd)
        for name, values in maps.items():
            v, v_in, v_bd = values[segment], values[interior], values[boundary]
            m[name] = v.mean()
            m[name + "_in"] = v_in.mean() if s_in else 0.0
            m[name + "_bd"] = v_bd.mean() if s_bd else 0.0
            m[name + "_rel"] = m[name] * s_rel
            m[name + "_rel_in"] = m[name + "_in"] * s_rel_in
            m[name + "_var"] = v.var()
            m[name + "_var_in"] = v_in.var() if s_in else 0.0
            m[name + "_var_bd"] = v_bd.var() if s_bd else 0.0
            m[name + "_var_rel"] = m[name + "_var"] * s_rel
            m[name + "_var_rel_in"] = m[name + "_var_in"] * s_rel_in
        m.update(S=s, S_in=s_in, S_bd=s_bd, S_rel=s_rel, S_rel_in=s_rel_in)
        hist = outside_neighbour_classes(segment, pred, nclasses)
        for c in range(nclasses):
            m[f"cprob{c}"] = probs[c][segment].astype(np.float64).mean()
            m[f"ndist{c}"] = hist[c] / max(hist.sum(), 1)
        rows_out.append(m)
    return stack(rows_out, segment_keys(nclasses)), components


def reference_gt_metrics(probs, mask, gt_train, gt_label, ood_index):
    """Metrics of the ground-truth OoD components: (dict key -> (n,) float64, components (H, W) int)."""
    prediction, truth = masks(gt_train, mask, ood_index)
    nclasses = probs.shape[0]
    pred = np.argmax(probs, axis=0)
    rows, cols = np.indices(gt_train.shape)
    rows_out = []
    components = np.zeros(gt_train.shape, dtype=int)
    for k, segment in enumerate(components_in_scan_order(truth), start=1):
        boundary = segment & (outside_neighbour_counts(segment) > 0)
        interior = segment & ~boundary
        components[interior], components[boundary] = k, -k
        s = int(segment.sum())
        iou, intersection = adjusted_iou(segment, prediction, truth)
        first = np.flatnonzero(segment)[0]
        m = {"iou": iou, "iou0": float(intersection == 0), "rec": intersection / s,
             "train_class": 255.0, "label_class": float(gt_label.flat[first]),
             "mean_x": rows[segment].mean(), "mean_y": cols[segment].mean(),
             "S": s, "S_in": int(interior.sum()), "S_bd": int(boundary.sum())}
        for c in range(nclasses):
            m[f"S_{c}"] = int((pred[segment] == c).sum())
            m[f"cprob{c}"] = probs[c][segment].astype(np.float64).mean()
        rows_out.append(m)
    return stack(rows_out, gt_keys(nclasses)), components


def segment_keys(nclasses):
    """The predicted-segment metric names, in the original's order."""
    keys = ["iou", "iou0", "prc", "mean_x", "mean_y"]
    for h in ("E", "D", "V"):
        keys += [h, h + "_in", h + "_bd", h + "_rel", h + "_rel_in",
                 h + "_var", h + "_var_in", h + "_var_bd", h + "_var_rel", h + "_var_rel_in"]
    keys += ["S", "S_in", "S_bd", "S_rel", "S_rel_in"]
    for c in range(nclasses):
        keys += [f"cprob{c}", f"ndist{c}"]
    return keys


def gt_keys(nclasses):
    """The ground-truth component metric names, in the original's order."""
    keys = ["iou", "iou0", "rec", "train_class", "label_class", "mean_x", "mean_y", "S", "S_in", "S_bd"]
    for c in range(nclasses):
        keys += [f"S_{c}", f"cprob{c}"]
    return keys


def stack(rows, keys):
    """List of per-segment dicts -> dict key -> (n,) float64 array, in the order of keys."""
    return {key: np.array([r[key] for r in rows], dtype=np.float64) for key in keys}
