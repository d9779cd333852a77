"""Segment-level errors: false-positive OoD segments and missed ground-truth OoD objects."""
import numpy as np


def count_segment_errors(results, removed=None):
    """Numbers of false-positive and false-negative OoD segments over a dataset.

    results: one segment_search result per image (metrics, components, gt_components).
    removed: None, or one bool array per image (one entry per predicted segment, scan order) of the
    segments the meta classifier removes.
    A false positive is a kept segment with iou0 = 1 (it holds no ground-truth OoD pixel); a false
    negative is a ground-truth OoD component that no kept segment touches. Returns (fp, fn).
    """
    fp = fn = 0
    for i, result in enumerate(results):
        iou0 = np.asarray(result["metrics"]["iou0"], dtype=bool)
        kept = np.ones(len(iou0), dtype=bool) if removed is None else ~np.asarray(removed[i], dtype=bool)
        fp += int((iou0 & kept).sum())
        # segment ids run 1..n in scan order, the same order as the metrics
        kept_ids = np.flatnonzero(kept) + 1
        predicted = np.isin(np.abs(result["components"]), kept_ids)
        gt = np.abs(result["gt_components"])
        hit = np.unique(gt[predicted & (gt > 0)])
        fn += len(np.setdiff1d(np.unique(gt[gt > 0]), hit))
    return fp, fn
