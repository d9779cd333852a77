"""Streaming pixel-level OoD metrics: AUROC, AP, FPR at 95% TPR and the best-F1 threshold.

Every score is counted in a histogram whose bins are the float32 values sharing their top `bits` bits
(sign, exponent and the leading mantissa bits, in an order-preserving encoding). The grid covers every
float, so the score range need not be known, and its bins are relatively fine everywhere: with the
default 24 bits a bin spans a factor of 1 + 2**-15 (0.003%) of its values. Memory is a fixed
2**bits x 2 int64 counters (256 MiB of address space by default, of which only the pages of bins that
received pixels become resident), whatever the number of pixels.

Metrics are computed from the histogram exactly as sklearn computes them from the pixels, except that
pixels sharing a bin count as tied. When no bin holds two different score values the result is
therefore sklearn's up to float rounding; otherwise the deviation is bounded (see `compute`).
"""
import numpy as np


class PixelMetrics:
    """Accumulates (score, is OoD) pixels image by image; OoD is the positive class.

    `counts[b] = (in-distribution pixels, OoD pixels)` of bin b, bins ascending in score. Two
    accumulators with the same `bits` merge (`a + b`, `a.merge(b)`), e.g. one per process.
    """

    def __init__(self, bits=24):
        if not 8 <= bits <= 24:
            raise ValueError(f"bits must be in 8..24 (2**bits bins), got {bits}")
        self.bits = bits
        self.counts = np.zeros((2 ** bits, 2), dtype=np.int64)

    def update(self, scores, is_ood):
        """Add pixels. scores: float array of any shape and range (no NaN), higher = more anomalous;
        is_ood: bool array of the same shape, True for OoD pixels. Remove ignored pixels first."""
        scores = np.asarray(scores)
        is_ood = np.asarray(is_ood)
        if is_ood.dtype != bool:
            raise ValueError(f"is_ood must be a bool array (True = OoD pixel), got dtype {is_ood.dtype}; "
                             "compare the labels with the OoD id and drop ignored pixels first")
        if scores.shape != is_ood.shape:
            raise ValueError(f"scores has shape {scores.shape} but is_ood has {is_ood.shape}")
        index = score_bins(scores, self.bits)
        index <<= 1  # int32 holds it (bits <= 24): half the memory traffic of intp
        index |= is_ood.ravel()
        # one increment per pixel, O(pixels): the former sort of the indices was as fast only on CPUs whose
        # numpy has a vectorised sort (AVX-512), and several times slower elsewhere
        np.add.at(self.counts.reshape(-1), index, 1)

    def merge(self, other):
        """Add the pixels counted by `other` to this accumulator; returns self."""
        if other.bits != self.bits:
            raise ValueError(f"cannot merge PixelMetrics of {other.bits} and {self.bits} bits")
        touched = np.flatnonzero(other.counts.reshape(-1))
        self.counts.reshape(-1)[touched] += other.counts.reshape(-1)[touched]
        return self

    def __add__(self, other):
        merged = PixelMetrics(self.bits)
        return merged.merge(self).merge(other)

    def compute(self, curve_points=1000):
        """The metrics of all pixels added so far.

        Thresholds run over the non-empty bins from the highest down; at bin b the pixels of bins >= b
        are predicted OoD. Returns a dict:
          auroc: area under the ROC curve (trapezoids from (0, 0), as sklearn.metrics.roc_auc_score).
          ap: average precision sum_k (R_k - R_k-1) P_k, as sklearn.metrics.average_precision_score.
          fpr95: the FPR at the first (highest) threshold whose TPR >= 0.95, i.e. the lowest FPR of
            any threshold that finds 95% of the OoD pixels (sklearn: fpr[searchsorted(tpr, 0.95)]).
          f1_threshold, best_f1: the threshold tau whose prediction `score > tau` maximises the pixel
            F1 = 2TP / (2TP + FP + FN) (the highest such tau on ties), and that F1. tau is the largest
            float32 below the best bin, so `score > tau` selects exactly the pixels of bins >= it
            (for float32 scores above -inf).
          num_ood, num_in: pixel counts.
          auroc_error_bound: 0.5 * sum_b pos_b * neg_b / (num_ood * num_in), the largest possible
            |auroc - exact auroc| from pixels tied by binning (it includes real ties, so it is loose).
          fpr95_error_bound: in-distribution pixels of the bin where TPR crosses 0.95 / num_in.
            (AP has no such simple bound: a bin credits all its OoD pixels with the precision at its
            end, which lowers AP where the precision changes fast, mostly at the top of the ranking;
            at 24 bits it stayed within 2e-5 of sklearn on realistic score distributions.)
          roc: {"fpr", "tpr"} and pr: {"recall", "precision"}: float64 arrays of at most
            curve_points points spread evenly along the ROC curve, for plotting; roc starts at (0, 0).
        Raises ValueError when there are no OoD or no in-distribution pixels.
        """
        # sorted, a bin twice when both classes fell in it; numpy finds the nonzero entries of a bool array several
        # times faster than those of an int64 one
        touched = np.flatnonzero(self.counts.reshape(-1) != 0) >> 1
        bins = touched[np.diff(touched, prepend=-1) != 0][::-1]
        neg, pos = self.counts[bins, 0].astype(np.float64), self.counts[bins, 1].astype(np.float64)
        num_ood, num_in = int(pos.sum()), int(neg.sum())
        if num_ood == 0 or num_in == 0:
            raise ValueError(f"pixel metrics need OoD and in-distribution pixels, got {num_ood} OoD and "
                             f"{num_in} in-distribution pixels; check the labels and the ignored pixels")
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        tpr, fpr = tp / num_ood, fp / num_in
        precision = tp / (tp + fp)

        # each in-distribution pixel is outranked by the OoD pixels of higher bins, half of its own bin's
        auroc = float(np.sum(neg * (tp - pos / 2)) / num_in / num_ood)
        ap = float(np.sum(np.diff(tpr, prepend=0.0) * precision))
        cross = int(np.searchsorted(tpr, 0.95))
        f1 = 2 * tp / (tp + fp + num_ood)
        best = int(np.argmax(f1))

        roc_fpr, roc_tpr = np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])
        along = np.searchsorted(roc_fpr + roc_tpr, np.linspace(0, 2, max(curve_points, 2)))
        keep = np.unique(np.minimum(along, len(roc_fpr) - 1))
        on_pr = keep[keep > 0] - 1
        return {
            "auroc": auroc,
            "ap": ap,
            "fpr95": float(fpr[cross]),
            "f1_threshold": _largest_float_below_bin(int(bins[best]), self.bits),
            "best_f1": float(f1[best]),
            "num_ood": num_ood,
            "num_in": num_in,
            "auroc_error_bound": float(0.5 * np.sum(pos * neg) / num_in / num_ood),
            "fpr95_error_bound": float(neg[cross] / num_in),
            "roc": {"fpr": roc_fpr[keep], "tpr": roc_tpr[keep]},
            "pr": {"recall": tpr[on_pr], "precision": precision[on_pr]},
        }


def float_order_keys(values):
    """(N,) int32 keys of the float32 `values` (flattened) in the order of the values, -0.0 and +0.0 alike: each
    float's bits, with the 31 value bits of negative floats flipped so that the int32 order is the float order."""
    keys = (np.asarray(values, dtype=np.float32).ravel() + np.float32(0)).view(np.int32)
    keys ^= (keys >> 31) & 0x7FFFFFFF
    return keys


def float_of_key(key):
    """The float32 value of an int32 order key (`float_order_keys`), or of each of an array of them: NumPy float32."""
    key = np.array(key, dtype=np.int32)
    key ^= (key >> 31) & 0x7FFFFFFF  # the flip is its own inverse
    return key.view(np.float32)[()]


def score_bins(scores, bits):
    """Histogram bin of each score: (N,) int32 in [0, 2**bits), monotone non-decreasing in the score.

    scores: float array of any shape, no NaN; compared as float32.
    """
    scores = np.asarray(scores, dtype=np.float32)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; the network output or the score computation is broken")
    keys = float_order_keys(scores)  # -0.0 and +0.0 share one bin
    keys >>= 32 - bits
    keys += 1 << (bits - 1)
    return keys


def _largest_float_below_bin(index, bits):
    """The largest float32 value smaller than every value of bin `index`, as a Python float."""
    key = ((index - (1 << (bits - 1))) << (32 - bits)) - 1
    if key < -2 ** 31:
        return float("-inf")
    value = float_of_key(key)
    if np.isnan(value):
        # only NaN bit patterns lie below the bin that holds -inf
        return float("-inf")
    if value == 0:
        # the key below +0.0 is -0.0, which equals +0.0; step to the next negative float instead
        return -float(np.finfo(np.float32).smallest_subnormal)
    return float(value)
