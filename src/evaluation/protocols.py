"""Three ways to turn score maps into AUROC, AP and FPR95: ours, the paper's and the leaderboard's.

A reader must be able to tell a method's difference from a protocol's difference, so each protocol
reproduces one reference exactly, behind one streaming interface that works on frames:

    protocol = build_protocol("smiyc", segsize=50, instsize=10)
    for score, label in frames():          # score: (H, W) float (any scale, higher = more anomalous)
        protocol.update(score, label)      # label: (H, W) uint8, 0 in-distribution, 1 OoD, 255 ignored
    components = protocol.components()     # None, or an accumulator at the protocol's own threshold
    for score, label in frames():          # a second pass over the same frames, in the same order
        components.update(score, label)
    result = protocol.compute()            # dict: auroc, ap, fpr95, f1_threshold, roc, pr, ... and,
                                           # after the second pass, "component": siou_gt, ppv, mean_f1
`evaluate_frames(protocol, frames)` runs both passes for a function `frames()` that yields the
(score, label) pairs (`measure.binary_labels` makes the labels from train ids).

- `exact` (ExactProtocol): every pixel counts, AUROC / AP / FPR95 as sklearn computes them from the
  pooled pixels (to 1e-4, `pixel_metrics.PixelMetrics`); components at the best pixel-F1 threshold with
  `score > tau` compared in float64 (`component_metrics`). Memory independent of the number of frames.
- `meta-ood` (MetaOodProtocol): the paper's code (robin-chan/meta-ood `evaluation.py` `counts`,
  `src/calc.py`, `src/helper.py`), bit for bit: scores binned into 100 equal bins on [0, 1]
  (np.histogram's bins, found without its sort: `histogram_bins`; scores outside [0, 1] are an error, where the
  original silently dropped them),
  AUROC and FPR95 (the FPR at the TPR nearest 0.95) from the bin counts rescaled to 1e5 pixels per
  class, AP from the counts rescaled to 1e7 pixels in the true in/out ratio, every rescaled count
  truncated to an integer and every score being its bin's upper edge. No component metrics. 200 counters.
- `smiyc` (SmiycProtocol): SegmentMeIfYouCan's road-anomaly-benchmark (`PixBinaryClass` and `SegEval-*`) at
  its newest commit (BENCHMARK_COMMIT) with the numpy 1.23 it pins, to float rounding, on the maps as stored
  (their dtype and values; `stored_dtype=np.float16` rounds scores computed here as --export_smiyc writes
  them). Per frame, up to 768 percentile bins: the edges are vmin - eps and vmax + eps (eps = 1% of the
  frame's range, at least 0.01) and 384 np.quantile edges of the OoD and of the in-distribution scores each;
  the frames' bins are merged by sorting their lower edges with numpy 1.23's np.argsort (legacy_argsort:
  which of several equal edges comes first decides the curve's first point). The README lists the
  benchmark's quirks reproduced here. O(frames x 768) memory.
"""
import numpy as np
import torch
from sklearn.metrics import auc, average_precision_score, roc_curve

from src.evaluation.component_metrics import ComponentMetrics, float_scores
from src.evaluation.float_cells import cell_histogram, float16_histogram, gather_cells, sort_entries
from src.evaluation.legacy_argsort import argsort_numpy123
from src.evaluation.pixel_metrics import PixelMetrics, float_of_key, float_order_keys

PROTOCOLS = ("exact", "meta-ood", "smiyc")
# the commit of SegmentMeIfYouCan/road-anomaly-benchmark whose numbers `smiyc` gives (its newest, 2023-08-24)
BENCHMARK_COMMIT = "1c7804e"
NOT_FINITE = "scores contain NaN or infinity; the benchmark's bins need finite scores"


def build_protocol(name, segsize, instsize, stored_dtype=None):
    """A fresh accumulator of protocol `name` (one of PROTOCOLS); segsize / instsize: minimum predicted and
    ground-truth component sizes of its component metrics (50 / 10 obstacle-type sets, 500 / 100 anomaly-type);
    stored_dtype: for smiyc, None to evaluate each map as given or np.float16 to round it as --export_smiyc
    writes it."""
    if name == "exact":
        return ExactProtocol(segsize, instsize)
    if name == "meta-ood":
        return MetaOodProtocol()
    if name == "smiyc":
        return SmiycProtocol(segsize, instsize, stored_dtype)
    raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")


def evaluate_frames(protocol, frames):
    """Both passes of `protocol` over `frames()` (a function returning an iterable of (score, label));
    returns protocol.compute()."""
    for score, label in frames():
        protocol.update(score, label)
    components = protocol.components()
    if components is not None:
        for score, label in frames():
            components.update(score, label)
    return protocol.compute()


def _check_frame(score, label):
    score, label = np.asarray(score), np.asarray(label)
    if score.ndim != 2 or score.shape != label.shape:
        raise ValueError(f"score and label must be (H, W) arrays of the same shape, got {score.shape} and "
                         f"{label.shape}")
    if label.dtype != np.uint8:
        raise ValueError(f"label must be uint8 (0 in-distribution, 1 OoD, 255 ignored), got dtype {label.dtype}")
    return float_scores(score), label


class _Protocol:
    name = ""

    def __init__(self):
        self.component_metrics = None

    def components(self):
        """The accumulator of the component pass (update(score, label) per frame), or None."""
        return None

    def compute(self):
        result = self.pixel_result()
        if self.component_metrics is not None:
            result["component"] = {**self.component_metrics.compute(), "tau": self.component_metrics.tau,
                                   "segsize": self.component_metrics.segsize,
                                   "instsize": self.component_metrics.instsize}
        return result


class ExactProtocol(_Protocol):
    """Pooled pixels, as sklearn (PixelMetrics), and the component metrics at its best-F1 threshold."""
    name = "exact"

    def __init__(self, segsize, instsize):
        super().__init__()
        self.segsize, self.instsize = segsize, instsize
        self.pixels = PixelMetrics()
        self.pixel_metrics = None  # pixels.compute() of the pixels so far, once asked for (it takes a while)

    def update(self, score, label):
        score, label = _check_frame(score, label)
        valid = label != 255
        self.pixels.update(score[valid], label[valid] == 1)
        self.pixel_metrics = None

    def pixel_result(self):
        if self.pixel_metrics is None:
            self.pixel_metrics = self.pixels.compute()
        return dict(self.pixel_metrics)

    def components(self):
        self.component_metrics = ComponentMetrics(self.pixel_result()["f1_threshold"], self.segsize, self.instsize)
        return self.component_metrics


class MetaOodProtocol(_Protocol):
    """The meta-ood paper's pixel metrics: 100 bins on [0, 1], rescaled counts, sklearn curves."""
    name = "meta-ood"
    num_bins = 100

    def __init__(self):
        super().__init__()
        self.edges = np.linspace(0, 1, self.num_bins + 1)  # the original's np.histogram bins
        self.counts = np.zeros((2, self.num_bins), dtype=np.int64)  # in-distribution, OoD

    def update(self, score, label):
        score, label = _check_frame(score, label)
        for row in (0, 1):
            values = score[label == row]
            if values.size and not (values.min() >= 0 and values.max() <= 1):  # also catches NaN
                raise ValueError("the meta-ood protocol bins scores on [0, 1] (as the original's entropy histogram), "
                                 f"got scores in [{values.min()}, {values.max()}]; use it with entropy or max_softmax")
            self.counts[row] += np.bincount(histogram_bins(values, self.edges), minlength=self.num_bins)

    def pixel_result(self):
        counts_in, counts_out = self.counts
        num_in, num_ood = int(counts_in.sum()), int(counts_out.sum())
        if num_ood == 0 or num_in == 0:
            raise ValueError(f"pixel metrics need OoD and in-distribution pixels, got {num_ood} OoD and {num_in} "
                             "in-distribution pixels; check the labels and the ignored pixels")
        # the original lists every rescaled pixel (bin i of 1..100 repeated, score i / 100); sklearn gives the
        # same curves from one sample per bin weighted by its count, since only the cumulative counts matter
        score = np.arange(1, self.num_bins + 1) / 100
        y_true = np.repeat([0, 1], self.num_bins)
        y_score = np.concatenate([score, score])

        def rescaled(counts, size):
            return (counts / np.sum(counts) * size).astype("uint32")

        weight = np.concatenate([rescaled(counts_in, 1e5), rescaled(counts_out, 1e5)])
        fpr, tpr, _ = roc_curve(y_true, y_score, sample_weight=weight)
        ratio_in = np.sum(counts_in) / (np.sum(counts_in) + np.sum(counts_out))
        weight_ap = np.concatenate([rescaled(counts_in, 1e7 * ratio_in), rescaled(counts_out, 1e7 * (1 - ratio_in))])
        ap = average_precision_score(y_true, y_score, sample_weight=weight_ap)
        # for the plots: the exact precision of each bin's threshold (>= its upper edge)
        tp, fp = np.cumsum(counts_out[::-1]), np.cumsum(counts_in[::-1])
        with np.errstate(invalid="ignore"):
            precision = tp / (tp + fp)
        return {
            "auroc": float(auc(fpr, tpr)),
            "ap": float(ap),
            "fpr95": float(fpr[np.abs(tpr - 0.95).argmin()]),
            "num_ood": num_ood,
            "num_in": num_in,
            "counts_in": counts_in.tolist(),
            "counts_out": counts_out.tolist(),
            "roc": {"fpr": fpr, "tpr": tpr},
            "pr": {"recall": (tp / num_ood)[tp + fp > 0], "precision": precision[tp + fp > 0]},
        }


def histogram_bins(values, edges):
    """The bin np.histogram(values, bins=edges) counts each value in: (N,) int32. values: (N,) float in [0, 1] (no
    NaN); edges: (n + 1,) float64, np.linspace(0, 1, n + 1). Bin k holds edges[k] <= value < edges[k + 1], the last
    bin 1 too. Without np.histogram's sort of the values (most of a frame's time): value * n, truncated, is the bin
    or a neighbour (rounded in the values' dtype; linspace's edges are not exactly k / n), and one comparison each
    way with the edges settles it. Those comparisons are np.histogram's, which compares in float64, made in the
    values' dtype with the smallest value of that dtype at or above each edge."""
    num = len(edges) - 1
    lower = edges.astype(values.dtype)
    rounded_down = lower < edges
    lower[rounded_down] = np.nextafter(lower[rounded_down], np.inf)
    lower[-1] = np.inf  # the last bin holds 1 too
    index = np.minimum((values * num).astype(np.int32), num - 1)
    index -= values < lower[index]
    index += values >= lower[index + 1]
    return index


def to_float16(score):
    """score (any shape, float) rounded to float16 as the submission files store it: torch converts with the
    same round-to-nearest-even as numpy, tens of times faster. On one thread: a 2-megapixel frame takes
    0.5 ms on one core, while torch's default threads wait for each other on a busy machine (10 ms on two
    shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.from_numpy(np.ascontiguousarray(score, dtype=np.float32)).half().numpy()
    finally:
        torch.set_num_threads(threads)


# every float16 bit pattern in ascending order of its value (the NaN patterns last) and those values as
# float64: a histogram of a sample's patterns, reordered so, gives the sorted sample
FLOAT16_ORDER = np.argsort(np.arange(1 << 16, dtype=np.uint16).view(np.float16), kind="stable")
FLOAT16_VALUES = FLOAT16_ORDER.astype(np.uint16).view(np.float16).astype(np.float64)
FLOAT16_NOT_FINITE = (np.arange(1 << 16) & 0x7C00) == 0x7C00


def _quantile_positions(count, num):
    """(lower, upper, gamma) of np.quantile(sample, np.linspace(0, 1, num)) (method 'linear') of a sample of
    `count` values as numpy 1.23 computes them: the 0-based positions of the two neighbours in the sorted sample
    (int64) and the weight of the upper one (float64)."""
    virtual = (count - 1) * np.linspace(0, 1, num)
    previous = np.floor(virtual)
    above = virtual >= count - 1
    lower = np.where(above, count - 1, previous).astype(np.int64)
    upper = np.where(above, count - 1, previous + 1).astype(np.int64)
    gamma = virtual - np.where(above, -1, previous)  # numpy's previous index is -1 there; a == b makes it moot
    return lower, upper, gamma


def _interpolated(a, b, gamma, dtype):
    """numpy 1.23's quantile between the neighbours a and b (float64 arrays of values of `dtype`): their
    difference in the sample's dtype, weighted in float64. Returns float64."""
    a, b = a.astype(dtype), b.astype(dtype)
    diff = (b - a).astype(np.float64)  # rounded in the sample's dtype, as numpy subtracts the neighbours
    result = a + diff * gamma
    high = gamma >= 0.5
    result[high] = (b - diff * (1 - gamma))[high]
    return result


# Each _frame_bins_* function reads one frame and returns None when no pixel lies outside the void, else
# (counts, values_at, below) for the rows 0 (in-distribution) and 1 (OoD): counts, the pixels of each row;
# values_at(positions), for a pair of int arrays of 0-based positions in each row's sorted sample, the pair of
# float64 arrays of the values there; below(edges), for float64 edges, the (2, E) counts of each row's values
# below each edge (compared in float64).

def _frame_bins_float16(score, label):
    """A float16 frame, from one histogram of its 65536 bit patterns per row (src/evaluation/float_cells.pyx): the
    sorted sample without a sort."""
    histogram = float16_histogram(np.ascontiguousarray(score).view(np.uint16).ravel(),
                                  np.ascontiguousarray(label).ravel())
    # every exponent bit set: NaN or infinity; on an ignored pixel it still means a broken map
    if histogram[:, FLOAT16_NOT_FINITE].any():
        raise ValueError(NOT_FINITE)
    histogram = histogram[:2, FLOAT16_ORDER]
    cumulative = np.cumsum(histogram, axis=1)
    if not cumulative[:, -1].any():
        return None

    def values_at(positions):
        return [FLOAT16_VALUES[np.searchsorted(cumulative[c], positions[c], side="right")] for c in (0, 1)]

    def below(edges):
        return np.pad(cumulative, ((0, 0), (1, 0)))[:, np.searchsorted(FLOAT16_VALUES, edges)]

    return [int(n) for n in cumulative[:, -1]], values_at, below


def _frame_bins_sorted(score, label):
    """A float64 frame, from one sort of each row's values."""
    samples = [np.sort(score[label == c]) for c in (0, 1)]
    if not all(np.isfinite(s[[0, -1]]).all() for s in samples if s.size) or not np.isfinite(score[label == 255]).all():
        raise ValueError(NOT_FINITE)
    if not any(s.size for s in samples):
        return None
    return ([s.size for s in samples], lambda positions: [s[p].astype(np.float64) for s, p in zip(samples, positions)],
            lambda edges: np.stack([np.searchsorted(s, edges) for s in samples]))


CELL_BITS = 18  # the top bits of a float32's order key that name its cell: 1/512 of a power of two wide


def _frame_bins_float32(score, label):
    """A float32 frame, without sorting it: a histogram of each pixel's cell (its row and the top CELL_BITS
    bits of its order key, `float_order_keys`), then a radix sort of only the pixels in the cells that hold a
    wanted position or edge, by their remaining bits; the passes over the pixels in src/evaluation/float_cells.pyx.
    Cells are numbered row * 2**CELL_BITS + top bits + 2**(CELL_BITS - 1), so that `cumulative` counts the
    pixels of the rows 0 and 1 in the order of their values."""
    low_bits = 32 - CELL_BITS
    bits = np.ascontiguousarray(score).view(np.int32).ravel()
    label = np.ascontiguousarray(label).ravel()
    histogram = cell_histogram(bits, label, CELL_BITS).reshape(3, 1 << CELL_BITS)
    # infinity and NaN fill the outermost cells of each row, finite floats none of them (on ignored pixels too)
    outer = (0x7F800000 >> low_bits) + (1 << (CELL_BITS - 1))
    if histogram[:, :(1 << CELL_BITS) - outer].any() or histogram[:, outer:].any():
        raise ValueError(NOT_FINITE)
    histogram = histogram.ravel()
    cumulative = np.cumsum(histogram[:2 << CELL_BITS], dtype=np.int64)
    counts = [int(cumulative[(1 << CELL_BITS) - 1]), int(cumulative[-1] - cumulative[(1 << CELL_BITS) - 1])]
    if not any(counts):
        return None
    row_start = [0, counts[0]]
    # the gathered pixels as (their cell's rank among the gathered cells << low_bits) | their low bits, ascending
    # (int32: half the sort of int64; at most 2 x 770 wanted positions and 2 x 770 edges, so ranks stay small);
    # a cell is gathered whole or not at all
    gathered = np.zeros(0, np.int32)
    rank_of = np.full(3 << CELL_BITS, -1, np.int32)
    num_ranked = 0

    def gather(wanted):
        nonlocal gathered, num_ranked
        wanted = np.unique(wanted[(rank_of[wanted] < 0) & (histogram[wanted] > 0)])
        if not wanted.size:
            return
        rank_of[wanted] = np.arange(num_ranked, num_ranked + wanted.size, dtype=np.int32)
        more = gather_cells(bits, label, rank_of, num_ranked, CELL_BITS, int(histogram[wanted].sum()))
        sort_entries(more)
        num_ranked += wanted.size
        # the new cells' ranks come after every earlier one: the entries stay sorted
        gathered = np.concatenate([gathered, more])

    def in_cell(cell, low):  # how many gathered pixels of each cell lie below its low bits `low`
        start = rank_of[cell] << low_bits
        return np.where(rank_of[cell] < 0, 0, np.searchsorted(gathered, start | low) - np.searchsorted(gathered, start))

    def values_at(positions):
        at = [np.searchsorted(cumulative, p + start, side="right") for p, start in zip(positions, row_start)]
        # the same cells of the other row too: the edges, mostly these values, are counted in both rows
        gather(np.concatenate([cell ^ (1 << CELL_BITS) for cell in at] + at))
        result = []
        for p, start, cell in zip(positions, row_start, at):
            rank = p + start - (cumulative[cell] - histogram[cell])
            low = gathered[np.searchsorted(gathered, rank_of[cell] << low_bits) + rank] & ((1 << low_bits) - 1)
            key = (cell % (1 << CELL_BITS) - (1 << (CELL_BITS - 1))) << low_bits | low
            result.append(float_of_key(key).astype(np.float64))
        return result

    def below(edges):
        # a float32 lies below a float64 edge when it lies below the smallest float32 at or above the edge
        with np.errstate(over="ignore"):
            ceiling = edges.astype(np.float32)
        ceiling[ceiling < edges] = np.nextafter(ceiling[ceiling < edges], np.float32(np.inf))
        key = float_order_keys(ceiling).astype(np.int64)
        at = [(row << CELL_BITS) + (key >> low_bits) + (1 << (CELL_BITS - 1)) for row in (0, 1)]
        gather(np.concatenate(at))
        return np.stack([cumulative[cell] - histogram[cell] - start + in_cell(cell, key % (1 << low_bits))
                         for cell, start in zip(at, row_start)])

    return counts, values_at, below


def greater_as_numpy123(score, tau):
    """(H, W) bool: score > tau as numpy 1.23 compares an array with a float64 scalar (value-based casting): in
    the array's dtype while tau lies within (-65000, 65000) or is not finite, else in float32 (up to 3.4e38)
    or float64. So tau is rounded to float16 against a float16 map."""
    tau = float(tau)
    dtype = score.dtype
    if np.isfinite(tau) and not -65000 < tau < 65000:
        dtype = np.promote_types(dtype, np.float32 if -3.4e38 < tau < 3.4e38 else np.float64)
    return score.astype(dtype, copy=False) > dtype.type(tau)


class SmiycProtocol(_Protocol):
    """SegmentMeIfYouCan's PixBinaryClass (768 percentile bins per frame) and SegEval component metrics, as the
    benchmark computes them at BENCHMARK_COMMIT."""
    name = "smiyc"
    num_bins = 768

    def __init__(self, segsize, instsize, stored_dtype=None):
        """stored_dtype: None evaluates each map as given, its dtype and values (the benchmark reads a stored map
        as it is); np.float16 first rounds it as --export_smiyc stores it (for scores computed here)."""
        super().__init__()
        self.segsize, self.instsize = segsize, instsize
        self.stored_dtype = stored_dtype
        self.thresholds, self.tp_rel, self.fp_rel = [], [], []
        self.num_pos = self.num_neg = self.num_frames = self.num_empty = 0

    def stored(self, score):
        if self.stored_dtype is None:
            return score
        return to_float16(score) if self.stored_dtype == np.float16 else score.astype(self.stored_dtype)

    def update(self, score, label):
        score, label = _check_frame(score, label)
        score = self.stored(score)
        bins = {np.dtype(np.float16): _frame_bins_float16,
                np.dtype(np.float32): _frame_bins_float32}.get(score.dtype, _frame_bins_sorted)(score, label)
        if bins is None:  # no pixel outside the void: the benchmark stops on it (np.min of nothing), we skip it
            self.num_empty += 1
            return
        counts, values_at, below = bins
        # per row: its smallest and largest value, then the neighbours of its quantiles, looked up at once
        quantiles = [_quantile_positions(n, min(self.num_bins // 2, n)) if n else (np.zeros(0, np.int64),) * 3
                     for n in counts]
        values = values_at([np.concatenate([[0, max(n - 1, 0)], lower, upper]) if n else np.zeros(0, np.int64)
                            for n, (lower, upper, _) in zip(counts, quantiles)])
        vmin = min(v[0] for v in values if v.size)
        vmax = max(v[1] for v in values if v.size)
        # the outer edges: vmax - vmin in the map's dtype (it may overflow), the margin in float64
        with np.errstate(over="ignore"):
            vrange = float(score.dtype.type(vmax) - score.dtype.type(vmin))
        eps = max(vrange * 1e-2, 1e-2)
        edges = [np.array([vmin - eps, vmax + eps])]
        for c in (1, 0):  # the benchmark concatenates the OoD quantiles first
            if counts[c]:
                lower, upper, gamma = quantiles[c]
                edges.append(_interpolated(values[c][2:2 + lower.size], values[c][2 + lower.size:], gamma,
                                           score.dtype))
        edges = np.unique(np.concatenate(edges))
        # np.histogram with these edges: bin k holds edges[k] <= value < edges[k + 1] (compared in float64);
        # the last edge lies above every value
        per_class = np.diff(below(edges), axis=1)
        # the benchmark walks each frame's bins from the highest down; a bin's threshold is its lower edge
        self.thresholds.append(edges[:-1][::-1])
        self.fp_rel.append(per_class[0][::-1])
        self.tp_rel.append(per_class[1][::-1])
        self.num_neg += counts[0]
        self.num_pos += counts[1]
        self.num_frames += 1

    def curve(self):
        """The benchmark's aggregated curve: dict of tp, fp, fn, tn and thresholds (float64 arrays, one entry per
        point of the reduced curve, thresholds descending, with its two extra end points)."""
        if not self.thresholds:
            raise ValueError("the smiyc protocol has seen no frame with pixels outside the void; update() it first")
        thresholds = np.concatenate(self.thresholds)
        # which of several equal thresholds comes first decides the curve's first point: numpy 1.23's order
        order = argsort_numpy123(thresholds)[::-1]
        tp = np.cumsum(np.concatenate(self.tp_rel)[order].astype(np.float64))
        fp = np.cumsum(np.concatenate(self.fp_rel)[order].astype(np.float64))
        thresholds = thresholds[order]
        # a point at the last occurrence of each threshold (all frames' pixels above it counted) and the first
        keep = np.concatenate([[0], np.nonzero(thresholds[:-1] != thresholds[1:])[0], [len(thresholds) - 1]])
        tp, fp, thresholds = tp[keep], fp[keep], thresholds[keep]
        fn, tn = self.num_pos - tp, self.num_neg - fp
        num_pos, num_neg = tp[0] + fn[0], fp[0] + tn[0]
        if tp[0] != 0 or fp[0] != 0:  # the curve starts at (0, 0), above the highest threshold
            tp, fp, fn, tn = (np.concatenate([[start], v]) for start, v in zip((0, 0, num_pos, num_neg), (tp, fp, fn, tn)))
            thresholds = np.concatenate([[thresholds.max() + 1], thresholds])
        if tp[-1] != num_pos or fp[-1] != num_neg:  # and ends with every pixel predicted OoD
            tp, fp, fn, tn = (np.concatenate([v, [end]]) for end, v in zip((num_pos, num_neg, 0, 0), (tp, fp, fn, tn)))
            thresholds = np.concatenate([thresholds, [thresholds.max() - 1]])  # the benchmark's: max, not min
        return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "thresholds": thresholds}

    def pixel_result(self):
        if self.num_pos == 0 or self.num_neg == 0:
            raise ValueError(f"pixel metrics need OoD and in-distribution pixels, got {self.num_pos} OoD and "
                             f"{self.num_neg} in-distribution pixels; check the labels and the ignored pixels")
        c = self.curve()
        tp, fp, fn, tn, thresholds = c["tp"], c["fp"], c["fn"], c["tn"], c["thresholds"]
        tpr, fpr = tp / (tp + fn), fp / (fp + tn)
        predicted = tp + fp
        precision = np.ones(len(tp))
        precision[predicted > 0] = tp[predicted > 0] / predicted[predicted > 0]
        recall = tp / (tp + fn)
        f1 = (2 * tp) / (2 * tp + fp + fn)
        tpr95 = int(np.searchsorted(tpr, 0.95))
        best = int(np.nanargmax(f1))
        return {
            "auroc": float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0)),  # np.trapz(tpr, fpr) of numpy 1.23
            "ap": float(np.sum(np.diff(recall) * precision[1:])),
            "fpr95": float(fpr[tpr95]) if tpr95 < len(tpr) else 1.0,
            "tpr95_threshold": float(thresholds[tpr95]) if tpr95 < len(tpr) else 0.0,
            "f1_threshold": float(thresholds[best]),  # the benchmark's best_f1_threshold, from the reduced curve
            "best_f1": float(f1[best]),
            "num_ood": self.num_pos,
            "num_in": self.num_neg,
            "num_frames": self.num_frames,
            "num_frames_all_void": self.num_empty,
            "benchmark_commit": BENCHMARK_COMMIT,
            **_thinned(fpr, tpr, recall, precision),
        }

    def components(self):
        self.component_metrics = _SmiycComponentMetrics(self.pixel_result()["f1_threshold"], self.segsize,
                                                        self.instsize, void_small_background=True)
        self.component_metrics.stored = self.stored
        return self.component_metrics


def _thinned(fpr, tpr, recall, precision, points=1000):
    """{"roc": {fpr, tpr}, "pr": {recall, precision}} at most `points` curve points spread evenly along the ROC
    curve, for the plots (the full curve has up to 768 points per frame)."""
    keep = np.unique(np.minimum(np.searchsorted(fpr + tpr, np.linspace(0, 2, points)), len(fpr) - 1))
    return {"roc": {"fpr": fpr[keep], "tpr": tpr[keep]}, "pr": {"recall": recall[keep], "precision": precision[keep]}}


class _SmiycComponentMetrics(ComponentMetrics):
    """ComponentMetrics of the maps as stored, predicting score > tau as numpy 1.23 compares them."""
    stored = staticmethod(lambda score: score)

    def predicted(self, score):
        return greater_as_numpy123(self.stored(float_scores(score)), self.tau)
