"""The SegmentMeIfYouCan component metrics of the segments a meta classifier keeps, for any choice of kept
segments, without another pass over the pixels.

The component metrics at the segment threshold t (`component_metrics.ComponentMetrics` at tau = t) see the
segments themselves as the predicted components. Removing a segment removes its component, and every
sum the metrics need is linear in the kept segments: for a ground-truth component k, the covered pixels,
|P| and the adjustment are sums over the kept segments that touch k, and a segment's PPV depends on itself
alone. So one pass per image stores, for each (ground-truth component, segment) pair, the overlap, and for
each segment its non-void size and its pixels on ground-truth OoD; the metrics of any kept set are then a
few bincounts. The nested cross-validation of the meta classifier's cut (src/meta_classifier.py) evaluates
hundreds of kept sets this way.

The steps are those of `component_metrics.image_components` (predicted components below `segsize` dropped,
ground-truth components below `instsize` voided, everything restricted to non-void pixels). The one
difference: the segments are `score >= t`, the metrics' components `score > t`; they differ only by pixels
that score exactly t.
"""
import numpy as np
from scipy import ndimage

from src.evaluation.component_metrics import SIOU_THRESHOLDS
from src.metaseg.score_segments import EIGHT_CONNECTED



def image_table(components, label, segsize, instsize):
    """One image's table. components: (H, W) int segment ids (+id interior, -id boundary, 0 none; ids
    1..n in the order of the segment metrics), label: (H, W) uint8 (0 in-distribution, 1 OoD, 255 void).
    Returns a dict of arrays: seg_size, seg_on_gt ((n,) non-void pixels of each segment and those on
    ground-truth OoD, 0 for a segment under segsize), gt_size ((G,) non-void ground-truth components),
    pair_gt (index into gt_size), pair_seg (0-based segment index), overlap ((P,) pixels)."""
    components = np.abs(np.asarray(components)).astype(np.int64)
    n = int(components.max()) if components.size else 0
    void = label == 255
    pred = np.where(void, 0, components)
    size = np.bincount(pred.ravel(), minlength=n + 1)
    pred[(size < segsize)[pred] & (pred > 0)] = 0
    gt, _ = ndimage.label(label == 1, structure=EIGHT_CONNECTED)
    gt_size = np.bincount(gt.ravel())
    void |= (gt_size < instsize)[gt] & (gt > 0)
    gt, pred = gt[~void], pred[~void]
    gt_size = np.bincount(gt, minlength=len(gt_size))
    seg_size = np.bincount(pred, minlength=n + 1)
    both = (gt > 0) & (pred > 0)
    pair, overlap = np.unique(gt[both] * (n + 1) + pred[both], return_counts=True)
    pair_gt, pair_seg = np.divmod(pair, n + 1)
    seg_on_gt = np.bincount(pair_seg, weights=overlap, minlength=n + 1)
    present = gt_size > 0
    present[0] = False
    gt_index = np.cumsum(present) - 1  # gt id -> position among the non-void ground-truth components
    return {"seg_size": seg_size[1:], "seg_on_gt": seg_on_gt[1:], "gt_size": gt_size[present],
            "pair_gt": gt_index[pair_gt], "pair_seg": pair_seg - 1, "overlap": overlap}


class SegmentComponents:
    """The tables of all images, concatenated in the order of `meta_classifier.segments_to_dataset` (image by
    image, segments in id order), so that a kept mask over all segments selects directly."""

    def __init__(self, tables):
        seg_offset = np.cumsum([0] + [len(t["seg_size"]) for t in tables])
        gt_offset = np.cumsum([0] + [len(t["gt_size"]) for t in tables])
        join = lambda key: np.concatenate([t[key] for t in tables]) if tables else np.zeros(0)  # noqa: E731
        self.seg_size, self.seg_on_gt, self.gt_size, self.overlap = (join(k) for k in ("seg_size", "seg_on_gt",
                                                                                        "gt_size", "overlap"))
        self.pair_gt = np.concatenate([t["pair_gt"] + o for t, o in zip(tables, gt_offset)]).astype(np.int64)
        self.pair_seg = np.concatenate([t["pair_seg"] + o for t, o in zip(tables, seg_offset)]).astype(np.int64)
        self.seg_image = np.repeat(np.arange(len(tables)), np.diff(seg_offset))
        self.gt_image = np.repeat(np.arange(len(tables)), np.diff(gt_offset))

    def __len__(self):
        return len(self.seg_size)

    def metrics(self, kept, images=None):
        """Component metrics when the segments with `kept` ((n,) bool) stay, over the images in `images`
        (None: all): dict siou_gt, ppv, mean_f1 (floats, NaN when undefined), tp, fp (per threshold),
        num_gt, num_pred, as ComponentMetrics.compute()."""
        gt_in = np.ones(len(self.gt_size), bool) if images is None else np.isin(self.gt_image, images)
        seg_in = np.ones(len(self), bool) if images is None else np.isin(self.seg_image, images)
        return self._metrics(np.asarray(kept, dtype=bool), gt_in, seg_in)

    def _metrics(self, kept, gt_in, seg_in):
        w = kept[self.pair_seg].astype(np.float64)
        g = len(self.gt_size)
        covered = np.bincount(self.pair_gt, weights=self.overlap * w, minlength=g)
        union = np.bincount(self.pair_gt, weights=self.seg_size[self.pair_seg] * w, minlength=g)
        adjustment = np.bincount(self.pair_gt, weights=(self.seg_on_gt[self.pair_seg] - self.overlap) * w,
                                 minlength=g)
        siou = (covered / (union + self.gt_size - covered - adjustment))[gt_in]
        counted = kept & seg_in & (self.seg_size > 0)
        ppv = self.seg_on_gt[counted] / self.seg_size[counted]
        tp = (siou[:, None] >= SIOU_THRESHOLDS).sum(axis=0)
        fp = (ppv[:, None] < SIOU_THRESHOLDS).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = 2 * tp / (2 * tp + (len(siou) - tp) + fp)
        return {"siou_gt": float(siou.mean()) if len(siou) else float("nan"),
                "ppv": float(ppv.mean()) if len(ppv) else float("nan"), "mean_f1": float(f1.mean()),
                "tp": tp.tolist(), "fp": fp.tolist(), "num_gt": int(len(siou)), "num_pred": int(len(ppv))}


def best_cut(components, prob, images):
    """The cut c on the false-positive probability whose removal (prob >= c) gives the highest component mean F1
    at t over `images`; prob: (n,) over all segments (only those of `images` matter). Candidates: every
    probability of those segments, and 'remove none' (inf). Ties go to the highest cut (the fewest removed).
    Returns a float (inf when removing nothing is best)."""
    mine = np.isin(components.seg_image, images)
    gt_in = np.isin(components.gt_image, images)
    candidates = np.concatenate([np.unique(prob[mine]), [np.inf]])
    best, best_f1 = np.inf, -1.0
    for cut in candidates[::-1]:
        f1 = components._metrics(~(mine & (prob >= cut)), gt_in, mine)["mean_f1"]
        if f1 > best_f1:
            best, best_f1 = cut, f1
    return float(best)
