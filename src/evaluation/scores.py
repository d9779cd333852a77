"""Pixel-wise OoD scores from the network's softmax and max logit; higher = more anomalous.

All functions take and return numpy arrays (the inference cache is read with h5py). SML needs the
class-wise mean and standard deviation of the max logit on in-distribution data, collected by
`ClassStats` one image at a time. Each score reads only the arrays of the inference cache that
SCORE_INPUTS names: max_softmax and SML need the largest probability and its class, not the whole
19-channel softmax (`softmax_top`).
"""
import math

import numpy as np
import torch

SCORES = ("entropy", "max_softmax", "max_logit", "sml", "energy")
# the arrays of the inference cache (src/cache.py) each score is computed from
SCORE_INPUTS = {"entropy": ("entropy",), "max_softmax": ("max_prob",), "max_logit": ("max_logit",),
                "sml": ("max_logit", "pred"), "energy": ("logsumexp",)}


def normalized_entropy(probs):
    """Softmax entropy divided by log C, in [0, 1].

    probs: (C, H, W) float16 or float32 softmax probabilities.
    Returns (H, W) float32. Like scipy.stats.entropy, 0 log 0 = 0 and each pixel's probabilities are
    renormalised to sum 1 first (float16 caches round them), via H(p/S) = H(p)/S + log S. Computed with
    torch, which is several times faster than numpy here.
    """
    return normalized_entropy_tensor(torch.from_numpy(_check_probs(probs))).numpy()


def normalized_entropy_tensor(probs):
    """normalized_entropy of a float32 tensor (C, H, W) on any device; returns (H, W) float32 there."""
    total = probs.sum(0)
    entropy = -torch.special.xlogy(probs, probs).sum(0) / total + total.log()
    return entropy / math.log(probs.shape[0])


def softmax_top(probs):
    """(max_c p_c, argmax_c p_c) of probs (C, H, W) float16 or float32: (H, W) of probs' dtype and (H, W) uint8
    (C <= 256), equal to probs.max(0) and probs.argmax(0) (the first class on ties) bit for bit, also to those of
    probs in float32. Several times faster than numpy's argmax, which copies the array to reduce over its
    first axis: non-negative finite floats compare as their bit patterns do as unsigned integers."""
    probs = np.asarray(probs)
    if probs.ndim != 3 or not 2 <= probs.shape[0] <= 256 or probs.dtype not in (np.float16, np.float32):
        raise ValueError(f"probs must be (C, H, W) float16 or float32 softmax probabilities with 2 <= C <= 256, got "
                         f"shape {probs.shape} and dtype {probs.dtype}")
    bits = probs.view(np.uint16 if probs.dtype == np.float16 else np.uint32)
    top = bits.max(axis=0)
    infinity = np.array(np.inf, dtype=probs.dtype).view(bits.dtype)
    if top.size and top.max() >= infinity:  # a sign bit, an infinity or a NaN somewhere: numpy's own order
        return probs.max(axis=0), probs.argmax(axis=0).astype(np.uint8)
    pred = np.zeros(top.shape, dtype=np.uint8)
    for c in range(len(bits) - 1, -1, -1):  # downwards, so that the first of equal classes is the last written
        np.copyto(pred, c, where=bits[c] == top)
    return top.view(probs.dtype), pred


def max_softmax_score(max_prob):
    """1 - max_c p_c, computed in float32. max_prob: (H, W) float16 or float32, the largest probability of each
    pixel (softmax_top). Returns (H, W) float32."""
    return 1 - np.asarray(max_prob).astype(np.float32)


def max_logit_score(max_logit):
    """-max_c logit_c. max_logit: (H, W) float. Returns (H, W) float32."""
    return -np.asarray(max_logit, dtype=np.float32)


def energy_score(logsumexp):
    """The energy -logsumexp_c logit_c (Liu et al. 2020, temperature 1). logsumexp: (H, W) float.
    Returns (H, W) float32."""
    return -np.asarray(logsumexp, dtype=np.float32)


def standardized_max_logit_score(max_logit, pred, mean, std):
    """SML, negated: -(max_logit - mean[pred]) / std[pred].

    max_logit: (H, W) float; pred: (H, W) integer predicted class (argmax of the softmax);
    mean, std: (C,) float from `ClassStats.mean_std()`. Returns (H, W) float32.
    """
    pred = np.asarray(pred)
    if pred.shape != np.shape(max_logit):
        raise ValueError(f"pred has shape {pred.shape} but max_logit has {np.shape(max_logit)}; "
                         "pass the predicted class of every pixel")
    pred = pred.astype(np.intp)  # once: numpy converts a smaller index type on every lookup
    score = np.take(np.asarray(mean, dtype=np.float32), pred)
    score -= np.asarray(max_logit, dtype=np.float32)
    score /= np.take(np.asarray(std, dtype=np.float32), pred)
    return score


def anomaly_score(name, inputs, class_stats=None):
    """The score `name` (one of SCORES) of one image: (H, W) float32, higher = more anomalous.

    inputs: dict of the arrays SCORE_INPUTS[name] names, as src.cache.read_cache gives them: entropy (H, W)
    float32 normalised entropy (returned as it is), max_prob (H, W) float16 or float32 and pred (H, W) integer
    (softmax_top of the softmax), max_logit and logsumexp (H, W) float; class_stats: a `ClassStats`, needed by
    "sml" only.
    """
    if name not in SCORE_INPUTS:
        raise ValueError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
    if name == "energy" and inputs.get("logsumexp") is None:
        raise ValueError("the energy score needs the logsumexp of the logits; rebuild the cache with -prepare")
    if name == "sml" and class_stats is None:
        raise ValueError("the sml score needs the class statistics of the max logit (a ClassStats); "
                         "measure them on Cityscapes train first")
    if name == "entropy":
        return inputs["entropy"]
    if name == "max_softmax":
        return max_softmax_score(inputs["max_prob"])
    if name == "max_logit":
        return max_logit_score(inputs["max_logit"])
    if name == "energy":
        return energy_score(inputs["logsumexp"])
    mean, std = class_stats.mean_std()
    return standardized_max_logit_score(inputs["max_logit"], inputs["pred"], mean, std)


def meta_classified_score(entropy, removed_mask, threshold):
    """The pixel score after the meta classifier: the entropy, with removed segments moved below the threshold.

    entropy: (H, W) float normalised entropy; removed_mask: (H, W) bool, the pixels of the segments the
    meta classifier removed (each has entropy >= threshold, the segment search's threshold).
    Returns (H, W) float32: kept pixels keep their entropy; a removed pixel gets threshold * entropy,
    capped below threshold (`below`). So a removed segment ranks below every kept segment,
    and a segment search at `threshold` would not find it again, but its pixels keep their order among
    themselves and stay above the in-distribution pixels of low entropy: the PR and ROC curves still
    reach every OoD pixel the meta classifier removed wrongly before they take in all in-distribution
    pixels, so FPR95 stays meaningful (scoring removed pixels 0 put them below every in-distribution
    pixel, and FPR95 read 100% whenever 5% of the OoD pixels lay in removed segments). With nothing
    removed the score is the entropy, bit for bit.
    """
    score = np.array(entropy, dtype=np.float32)
    score[removed_mask] = np.minimum(np.float32(threshold) * score[removed_mask], below(threshold))
    return score


def below(threshold):
    """The largest value below `threshold` that float32 and float16 both hold (float32's when float16 cannot
    hold the threshold): a removed pixel capped at it stays below the threshold in the float16 submission
    files too (capped at float32's largest value below 0.7, an entropy of 1 rounded up to 0.7002 there)."""
    half = np.float16(threshold)
    if not np.isfinite(half) or half == 0:
        return np.nextafter(np.float32(threshold), np.float32(-np.inf))
    if float(half) >= threshold:
        half = np.nextafter(half, np.float16(-np.inf))
    return np.float32(half)


class ClassStats:
    """Streaming per-class statistics of the max logit, grouped by predicted class, for SML.

    Keeps count, sum and sum of squares per class in float64, so images can be added one at a time
    and results of several processes merged.
    """

    def __init__(self, num_classes):
        self.count = np.zeros(num_classes, dtype=np.float64)
        self.sum = np.zeros(num_classes, dtype=np.float64)
        self.sum_sq = np.zeros(num_classes, dtype=np.float64)

    @property
    def num_classes(self):
        return len(self.count)

    def update(self, max_logit, pred):
        """Add one image. max_logit: (H, W) float; pred: (H, W) integer predicted class in [0, C)."""
        max_logit = np.asarray(max_logit, dtype=np.float64).ravel()
        pred = np.asarray(pred).ravel()
        if pred.shape != max_logit.shape:
            raise ValueError(f"pred has {pred.size} pixels but max_logit has {max_logit.size}")
        if pred.size and (pred.min() < 0 or pred.max() >= self.num_classes):
            raise ValueError(f"pred holds classes outside [0, {self.num_classes}): "
                             f"{pred.min()}..{pred.max()}")
        self.count += np.bincount(pred, minlength=self.num_classes)
        self.sum += np.bincount(pred, weights=max_logit, minlength=self.num_classes)
        self.sum_sq += np.bincount(pred, weights=max_logit * max_logit, minlength=self.num_classes)

    def merge(self, other):
        """Add the statistics of `other` (same number of classes) to these; returns self."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge class statistics of {other.num_classes} and {self.num_classes} classes")
        self.count += other.count
        self.sum += other.sum
        self.sum_sq += other.sum_sq
        return self

    def mean_std(self):
        """Per-class mean and population standard deviation of the max logit: two (C,) float64 arrays.

        A class predicted on fewer than 2 pixels, or whose max logit never varied, has no usable
        statistics: it gets the mean and std pooled over all pixels of all classes instead.
        """
        total = self.count.sum()
        if total < 2:
            raise ValueError("the class statistics hold fewer than 2 pixels; update() them with images first")
        pooled_mean = self.sum.sum() / total
        pooled_std = math.sqrt(max(self.sum_sq.sum() / total - pooled_mean ** 2, 0.0))
        if pooled_std == 0:
            raise ValueError("every max logit in the class statistics is equal, so SML is undefined")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sum / self.count
            std = np.sqrt(np.maximum(self.sum_sq / self.count - mean ** 2, 0.0))
        usable = (self.count >= 2) & (std > 0)
        return np.where(usable, mean, pooled_mean), np.where(usable, std, pooled_std)

    def to_dict(self):
        """JSON-able dict {"count", "sum", "sum_sq"}: lists of C floats (exact round trip)."""
        return {"count": self.count.tolist(), "sum": self.sum.tolist(), "sum_sq": self.sum_sq.tolist()}

    @classmethod
    def from_dict(cls, state):
        """Inverse of `to_dict`."""
        if not isinstance(state, dict) or set(state) != {"count", "sum", "sum_sq"}:
            raise ValueError("SML class statistics must be a dict with exactly the keys count, sum and sum_sq; "
                             "remake the file with evaluation.py --sml_stats")
        lengths = {len(state[key]) for key in ("count", "sum", "sum_sq")}
        if len(lengths) != 1:
            raise ValueError(f"SML class statistics hold lists of different lengths {sorted(lengths)}")
        stats = cls(lengths.pop())
        stats.count[:] = state["count"]
        stats.sum[:] = state["sum"]
        stats.sum_sq[:] = state["sum_sq"]
        return stats


def _check_probs(probs):
    probs = np.asarray(probs)
    if probs.ndim != 3 or probs.shape[0] < 2:
        raise ValueError(f"probs must be (C, H, W) softmax probabilities with C >= 2, got shape {probs.shape}")
    return probs.astype(np.float32, copy=False)
