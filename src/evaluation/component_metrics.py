"""Component-level OoD metrics of the SegmentMeIfYouCan benchmark: sIoU (gt), PPV (pred) and mean F1.

Definition, per image (label 0 in-distribution, 1 OoD, 255 void; higher score = more anomalous):
1. The predicted OoD mask is `score > tau` without the void pixels; the ground-truth OoD mask is
   `label == 1`. Both are split into 8-connected components.
2. Predicted components of fewer than `segsize` pixels are dropped. Ground-truth components of fewer
   than `instsize` pixels become void. Everything below counts only non-void pixels (a predicted
   component left without any disappears).
3. Ground-truth component k: P = union of the predicted components that intersect k,
   intersection = |k & P|, adjustment = |P & (other ground-truth components)|,
   sIoU(k) = intersection / (|P| + |k| - intersection - adjustment)   (0 when nothing touches k).
   The adjustment keeps a prediction that covers several neighbouring objects from being punished
   for the pixels it spends on the others.
4. Predicted component j: PPV(j) = |j & (ground-truth OoD)| / |j|.
5. For t in 0.25, 0.30, ..., 0.75: TP_t = ground-truth components with sIoU >= t, FN_t = the others,
   FP_t = predicted components with PPV < t, each summed over all images, and
   F1_t = 2 TP_t / (2 TP_t + FN_t + FP_t).
Reported: mean sIoU over all ground-truth components, mean PPV over all predicted components, and
the mean of F1_t over the 11 values of t. tau is the threshold that maximises the pixel F1 of the
whole dataset (`PixelMetrics.compute()["f1_threshold"]`); segsize / instsize are 500 / 100 for
anomaly-type sets and 50 / 10 for obstacle-type sets.

One deliberate difference from the benchmark's code: it also tests the background (label 0 of the
instance map) against `instsize` and voids it when it is that small; here only OoD components can
become void (`void_small_background=True` reproduces the benchmark, for protocols.SmiycProtocol).
The threshold comparison is done in float64, so any tau means what it says whatever the scores' dtype
(a float32 comparison would round tau = 0.1 up to the float32 0.1000000015 and miss the scores equal to it).
"""
import numpy as np
from scipy import ndimage

from src.metaseg.score_segments import EIGHT_CONNECTED

SIOU_THRESHOLDS = np.linspace(0.25, 0.75, 11)  # as the benchmark builds them, so t = 0.5 etc. compare alike


def float_scores(score):
    """`score` as an array, or ValueError when it is not a float array (a score map of ints is a mistake)."""
    score = np.asarray(score)
    if score.dtype.kind != "f":
        raise ValueError(f"score must be a float array, got dtype {score.dtype}")
    return score


def image_components(score, label, tau, segsize, instsize, void_small_background=False):
    """sIoU of every ground-truth component and PPV of every predicted component of one image.

    score: (H, W) float16, float32 or float64; label: (H, W) uint8 with 0 in-distribution, 1 OoD,
    255 void; tau: float, pixels with score > tau (compared in float64) are predicted OoD; segsize,
    instsize: int minimum component sizes in pixels; void_small_background: the benchmark's quirk, a
    background (everything but OoD components) of fewer than instsize pixels becomes void too.
    Returns (siou (G,) float64, ppv (Q,) float64).
    """
    return mask_components(np.greater(float_scores(score), np.float64(tau)), label, segsize, instsize, void_small_background)


def mask_components(predicted, label, segsize, instsize, void_small_background=False):
    """image_components of a predicted OoD mask: predicted (H, W) bool (void pixels are left out here), the
    other arguments and the result as image_components'."""
    predicted = np.asarray(predicted, dtype=bool)
    label = np.asarray(label)
    if predicted.ndim != 2 or predicted.shape != label.shape:
        raise ValueError(f"score and label must be (H, W) arrays of the same shape, got {predicted.shape} and "
                         f"{label.shape}")
    if label.dtype != np.uint8:
        raise ValueError(f"label must be uint8 (0 in-distribution, 1 OoD, 255 void), got dtype {label.dtype}")
    values = np.bincount(label.ravel(), minlength=256)
    if values[[0, 1, 255]].sum() != label.size:
        raise ValueError(f"label holds values other than 0, 1 and 255: {np.flatnonzero(values).tolist()}; "
                         "convert the dataset's train ids to 0 = in-distribution, 1 = OoD, 255 = void first")

    ood = label == 1
    found = predicted & (label != 255)
    # only the pixels of a ground-truth or a predicted component count below; of the rest, the background of the
    # ground truth, only its size matters (void_small_background). Labelled within the smallest box holding those
    # pixels, the components are the whole frame's, numbered alike, and every step after that sees those pixels
    # alone: a frame costs a few passes instead of a dozen
    background = label.size - np.count_nonzero(ood)
    either = ood | found
    rows, cols = np.flatnonzero(either.any(axis=1)), np.flatnonzero(either.any(axis=0))
    if not rows.size:
        return np.zeros(0), np.zeros(0)
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    pixels = np.flatnonzero(either[box])
    gt = ndimage.label(ood[box], structure=EIGHT_CONNECTED)[0].ravel()[pixels]
    pred = ndimage.label(found[box], structure=EIGHT_CONNECTED)[0].ravel()[pixels]
    pred_size = np.bincount(pred)
    pred[(pred_size < segsize)[pred] & (pred > 0)] = 0
    gt_size = np.bincount(gt)
    gt_size[0] = background
    kept = ~((gt_size < instsize)[gt] & ((gt > 0) | void_small_background))

    gt, pred = gt[kept], pred[kept]
    gt_size = np.bincount(gt, minlength=len(gt_size))
    pred_size = np.bincount(pred, minlength=len(pred_size))
    both = (gt > 0) & (pred > 0)
    pair, overlap = np.unique(gt[both].astype(np.int64) * len(pred_size) + pred[both], return_counts=True)
    pair_gt, pair_pred = np.divmod(pair, len(pred_size))
    covered = np.bincount(pair_gt, weights=overlap, minlength=len(gt_size))  # pixels of k in P
    on_gt = np.bincount(pair_pred, weights=overlap, minlength=len(pred_size))  # pixels of j on gt
    union = np.bincount(pair_gt, weights=pred_size[pair_pred], minlength=len(gt_size))  # |P|
    adjustment = np.bincount(pair_gt, weights=on_gt[pair_pred] - overlap, minlength=len(gt_size))

    gt_ids = np.flatnonzero(gt_size[1:]) + 1
    pred_ids = np.flatnonzero(pred_size[1:]) + 1
    siou = covered[gt_ids] / (union[gt_ids] + gt_size[gt_ids] - covered[gt_ids] - adjustment[gt_ids])
    ppv = on_gt[pred_ids] / pred_size[pred_ids]
    return siou, ppv


class ComponentMetrics:
    """Accumulates the component metrics over images; see the module docstring for the definition."""

    def __init__(self, tau, segsize, instsize, void_small_background=False):
        self.tau, self.segsize, self.instsize = float(tau), int(segsize), int(instsize)
        self.void_small_background = bool(void_small_background)
        self.num_gt = 0
        self.num_pred = 0
        self.siou_sum = 0.0
        self.ppv_sum = 0.0
        self.tp = np.zeros(len(SIOU_THRESHOLDS), dtype=np.int64)
        self.fp = np.zeros(len(SIOU_THRESHOLDS), dtype=np.int64)

    def predicted(self, score):
        """(H, W) bool: the pixels predicted OoD, score > tau compared in float64."""
        return np.greater(float_scores(score), np.float64(self.tau))

    def update(self, score, label):
        """Add one image. score: (H, W) float; label: (H, W) uint8 (0 / 1 / 255)."""
        siou, ppv = mask_components(self.predicted(score), label, self.segsize, self.instsize,
                                    self.void_small_background)
        self.num_gt += len(siou)
        self.num_pred += len(ppv)
        self.siou_sum += float(siou.sum())
        self.ppv_sum += float(ppv.sum())
        self.tp += (siou[:, None] >= SIOU_THRESHOLDS).sum(axis=0)
        self.fp += (ppv[:, None] < SIOU_THRESHOLDS).sum(axis=0)

    def merge(self, other):
        """Add the images counted by `other` (same tau, segsize, instsize); returns self."""
        settings = ("tau", "segsize", "instsize", "void_small_background")
        if any(getattr(other, name) != getattr(self, name) for name in settings):
            raise ValueError("cannot merge component metrics made with different tau, segsize, instsize or "
                             "void_small_background")
        self.num_gt += other.num_gt
        self.num_pred += other.num_pred
        self.siou_sum += other.siou_sum
        self.ppv_sum += other.ppv_sum
        self.tp += other.tp
        self.fp += other.fp
        return self

    def compute(self):
        """Dict: siou_gt, ppv, mean_f1 (floats; NaN when undefined, e.g. no component at all),
        thresholds, tp, fn, fp, f1 (lists, one entry per threshold t), num_gt, num_pred."""
        fn = self.num_gt - self.tp
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = 2 * self.tp / (2 * self.tp + fn + self.fp)
        return {
            "siou_gt": self.siou_sum / self.num_gt if self.num_gt else float("nan"),
            "ppv": self.ppv_sum / self.num_pred if self.num_pred else float("nan"),
            "mean_f1": float(f1.mean()),
            "thresholds": SIOU_THRESHOLDS.tolist(),
            "tp": self.tp.tolist(),
            "fn": fn.tolist(),
            "fp": self.fp.tolist(),
            "f1": f1.tolist(),
            "num_gt": self.num_gt,
            "num_pred": self.num_pred,
        }
