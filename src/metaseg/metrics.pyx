# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: extra_compile_args = -O3
"""MetaSeg segment metrics of the predicted OoD segments and of the ground-truth OoD components.

`compute_metrics_components` and `compute_metrics_mask` keep the names, signatures, metric keys and
return values of the original meta-ood code (dict metric name -> list with one value per segment, in
the order a row-major scan meets each segment's first pixel; segment map with +id on interior and -id
on boundary pixels), so code and results files written for the original keep working.

Where this code differs from the original, on purpose:
- segment ids are int32 (the original's int16 overflowed beyond 32767 segments);
- heatmap sums are accumulated in float64 (NumPy 2 made the original accumulate them in float32);
- a segment without boundary pixels (it fills the whole image) gets 0 for S_rel, S_rel_in and the
  `_bd` statistics, the way empty interiors get 0, where the original divided by zero;
- `ood_mask` and `ood_index` are required (the original's multi-class mode without them is not used
  by meta-ood).
"""
import numpy as np

from libc.float cimport FLT_EPSILON
from libc.math cimport log

HEATMAPS = ("E", "D", "V")  # normalised entropy, probability margin, variation ratio

# float16 probs (the inference cache stores them) are scanned as their uint16 bits, each value read converted
# through this table, which holds numpy's own float16 -> float32 conversion of every bit pattern: the metrics
# are those of the float32 copy, which the scan no longer needs (converting a whole 19 x 1024 x 2048 image
# costs more than the scan)
ctypedef fused stored_float:
    float
    unsigned short  # float16 bits

cdef float HALF_TO_FLOAT[65536]
HALF_TO_FLOAT[:] = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)


cdef inline float _as_float(stored_float value) noexcept nogil:
    if stored_float is float:
        return value
    else:
        return HALF_TO_FLOAT[value]

cdef enum:  # the two parts of a segment, the last axis of the size and heat sums
    INTERIOR = 0
    BOUNDARY = 1


def compute_metrics_components(probs, gt_train, ood_mask, ood_index):
    """Metrics of the predicted OoD segments (8-connected components of ood_mask, void removed).

    probs: (C, H, W) softmax, float16 (read as is) or any other float dtype (used as float32);
    gt_train: (H, W) train ids, 255 void; ood_mask: (H, W), nonzero = predicted OoD; ood_index: train
    id (or ids) of ground-truth OoD.
    Returns (metrics, components): metrics maps each of the original's keys (78 for 19 classes: iou,
    iou0 (1 when no pixel of the segment is ground-truth OoD), prc (always 0), mean_x, mean_y, the
    E/D/V statistics, S, S_in, S_bd, S_rel, S_rel_in, cprob<c>, ndist<c>) to a list with one value
    per segment; components is (H, W) int32, +id interior, -id boundary, 0 elsewhere.
    """
    probs, gt_train = _check_inputs(probs, gt_train, ood_mask=ood_mask)
    prediction, truth = _masks(gt_train, ood_mask, ood_index)
    components, sums = _scan(probs, prediction, truth, True)

    s_in, s_bd = sums["size"][:, INTERIOR], sums["size"][:, BOUNDARY]
    s = s_in + s_bd
    s_rel, s_rel_in = _divide(s, s_bd), _divide(s_in, s_bd)
    intersection = sums["intersection"]
    metrics = {
        "iou": _divide(intersection, s + sums["union_rest"]),
        "iou0": (intersection == 0).astype(np.int64),
        "prc": np.zeros(len(s), dtype=np.int64),  # declared but never filled by the original
        "mean_x": sums["x_sum"] / s,
        "mean_y": sums["y_sum"] / s,
    }
    for i, name in enumerate(HEATMAPS):
        total, square = sums["heat"][:, i], sums["heat_sq"][:, i]
        mean = total.sum(axis=1) / s
        mean_in, mean_bd = _divide(total[:, INTERIOR], s_in), _divide(total[:, BOUNDARY], s_bd)
        # population variances as E[h^2] - E[h]^2; an empty part gives 0 - 0
        var = square.sum(axis=1) / s - mean ** 2
        var_in = _divide(square[:, INTERIOR], s_in) - mean_in ** 2
        var_bd = _divide(square[:, BOUNDARY], s_bd) - mean_bd ** 2
        metrics.update({
            name: mean, name + "_in": mean_in, name + "_bd": mean_bd,
            name + "_rel": mean * s_rel, name + "_rel_in": mean_in * s_rel_in,
            name + "_var": var, name + "_var_in": var_in, name + "_var_bd": var_bd,
            name + "_var_rel": var * s_rel, name + "_var_rel_in": var_in * s_rel_in,
        })
    metrics.update({"S": s, "S_in": s_in, "S_bd": s_bd, "S_rel": s_rel, "S_rel_in": s_rel_in})
    ndist = sums["ndist"] / np.maximum(sums["ndist"].sum(axis=1, keepdims=True), 1)
    for c in range(probs.shape[0]):
        metrics[f"cprob{c}"] = sums["cprob"][:, c] / s
        metrics[f"ndist{c}"] = ndist[:, c]
    return {key: value.tolist() for key, value in metrics.items()}, components


def compute_metrics_mask(probs, mask, gt_train, gt_label, ood_index):
    """Metrics of the ground-truth OoD components (8-connected components of gt_train == ood_index).

    probs: (C, H, W) softmax, float16 (read as is) or any other float dtype (used as float32);
    mask: (H, W) predicted OoD mask, nonzero = OoD (void removed here); gt_train: (H, W) train ids,
    255 void; gt_label: (H, W) label ids.
    Returns (metrics, gt_components): metrics maps the original's keys (iou, iou0 = 1 for a missed
    component, rec, train_class (always 255, as in the original), label_class (label id of the first
    pixel), mean_x, mean_y, S, S_in, S_bd, S_<c> (pixels predicted as class c), cprob<c>) to a list
    with one value per component; gt_components is (H, W) int32, +id interior, -id boundary, 0 else.
    """
    probs, gt_train = _check_inputs(probs, gt_train, mask=mask, gt_label=gt_label)
    prediction, truth = _masks(gt_train, mask, ood_index)
    components, sums = _scan(probs, truth, prediction, False)

    s_in, s_bd = sums["size"][:, INTERIOR], sums["size"][:, BOUNDARY]
    s = s_in + s_bd
    intersection = sums["intersection"]
    metrics = {
        "iou": _divide(intersection, s + sums["union_rest"]),
        "iou0": (intersection == 0).astype(np.int64),
        "rec": intersection / s,
        "train_class": np.full(len(s), 255, dtype=np.int64),
        "label_class": np.asarray(gt_label).ravel()[sums["first_pixel"]].astype(np.int64),
        "mean_x": sums["x_sum"] / s,
        "mean_y": sums["y_sum"] / s,
        "S": s, "S_in": s_in, "S_bd": s_bd,
    }
    for c in range(probs.shape[0]):
        metrics[f"S_{c}"] = sums["pred_count"][:, c]
        metrics[f"cprob{c}"] = sums["cprob"][:, c] / s
    return {key: value.tolist() for key, value in metrics.items()}, components


def _check_inputs(probs, gt_train, **maps):
    """probs as the scan reads them (float32, or the uint16 bits of float16) and gt_train as an array."""
    probs = np.asarray(probs)
    if probs.dtype == np.float16:
        probs = np.ascontiguousarray(probs).view(np.uint16)
    else:
        probs = np.ascontiguousarray(probs, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[0] < 2:
        raise ValueError(f"probs must be (C, H, W) with at least 2 classes, got shape {probs.shape}")
    gt_train = np.asarray(gt_train)
    for name, array in {"gt_train": gt_train, **maps}.items():
        if np.shape(array) != probs.shape[1:]:
            raise ValueError(f"{name} must have the image shape {probs.shape[1:]} of probs (C, H, W), "
                             f"got {np.shape(array)}")
    return probs, gt_train


def _masks(gt_train, ood_mask, ood_index):
    """(H, W) uint8: predicted OoD without void pixels, and ground-truth OoD."""
    if ood_index is None:
        raise ValueError("ood_index is required: the train id of ground-truth OoD pixels (2 for LostAndFound)")
    prediction = (np.asarray(ood_mask) != 0) & (gt_train != 255)
    # one train id (the usual case) compares directly: np.isin costs as much as the whole scan of a segment
    truth = gt_train == ood_index if np.ndim(ood_index) == 0 else np.isin(gt_train, ood_index)
    return prediction.view(np.uint8), truth.view(np.uint8)


def _divide(a, b):
    """a / b as float64, 0 where b == 0."""
    return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)


def _scan(const stored_float[:, :, ::1] probs, const unsigned char[:, ::1] inside, const unsigned char[:, ::1] other,
          bint heatmaps):
    """Per-segment sums over the 8-connected components of `inside`, the statistics both sides need.

    probs: (C, H, W) float32, or the uint16 bits of float16; inside, other: (H, W) uint8 masks
    (predicted and ground-truth OoD, or the other way round). Returns (components, sums): components
    (H, W) int32 with +id interior, -id boundary; sums maps size (n, 2) [interior, boundary],
    intersection (n,) (pixels in other), union_rest (n,) (size of the 8-connected regions of
    other & ~inside that touch the segment: the adjusted IoU adds them to the union), x_sum, y_sum,
    first_pixel (n,) flat index, cprob, pred_count (argmax class of the segment pixels), ndist
    (argmax class of outside neighbours) (n, C), heat, heat_sq (n, 3, 2) sums of E, D, V and their
    squares over [interior, boundary]. Without `heatmaps` (the ground-truth side,
    which uses neither) ndist, heat and heat_sq stay 0 and their logarithms and argmaxes are skipped.
    The argmax of an outside neighbour is computed once per pixel (`neighbour_class`), though up to
    eight boundary pixels ask for it: its 19 strided loads are the scan's most expensive memory access.
    """
    cdef Py_ssize_t nclasses = probs.shape[0], h = probs.shape[1], w = probs.shape[2]
    labels = np.zeros((h, w), dtype=np.int32)
    pixels = np.empty(np.count_nonzero(inside), dtype=np.intp)
    starts = np.empty(pixels.size + 1, dtype=np.intp)
    cdef int n = _label(inside, labels, pixels, starts)

    rest = np.logical_and(other, np.logical_not(inside)).view(np.uint8)
    rest_labels = np.zeros((h, w), dtype=np.int32)
    rest_pixels = np.empty(np.count_nonzero(rest), dtype=np.intp)
    rest_starts = np.empty(rest_pixels.size + 1, dtype=np.intp)
    cdef int n_rest = _label(rest, rest_labels, rest_pixels, rest_starts)

    size = np.zeros((n, 2), dtype=np.int64)
    intersection = np.zeros(n, dtype=np.int64)
    union_rest = np.zeros(n, dtype=np.int64)
    x_sum = np.zeros(n, dtype=np.int64)
    y_sum = np.zeros(n, dtype=np.int64)
    cprob = np.zeros((n, nclasses), dtype=np.float64)
    pred_count = np.zeros((n, nclasses), dtype=np.int64)
    ndist = np.zeros((n, nclasses), dtype=np.int64)
    heat = np.zeros((n, 3, 2), dtype=np.float64)
    heat_sq = np.zeros((n, 3, 2), dtype=np.float64)
    stamp = np.zeros(n_rest + 1, dtype=np.int32)  # stamp[r] = last segment that added rest region r
    neighbour_class = np.full((h if heatmaps else 1, w if heatmaps else 1), -1, dtype=np.int16)  # -1: not yet

    cdef int[:, ::1] comp = labels
    cdef const Py_ssize_t[::1] pix = pixels, start = starts, rest_start = rest_starts
    cdef const int[:, ::1] rest_id = rest_labels
    cdef int[::1] last = stamp
    cdef short[:, ::1] argmax_of = neighbour_class
    cdef long long[:, ::1] size_v = size, pred_v = pred_count, ndist_v = ndist
    cdef long long[::1] inter_v = intersection, union_v = union_rest, x_v = x_sum, y_v = y_sum
    cdef double[:, ::1] cprob_v = cprob
    cdef double[:, :, ::1] heat_v = heat, heat_sq_v = heat_sq

    cdef double log_nclasses = log(<double>nclasses)
    cdef double prob, top1, top2, entropy, value
    cdef double values[3]
    cdef Py_ssize_t t, p, x, y, ii, jj
    cdef int k, c, best, outside, region, r, i
    with nogil:
        for k in range(n):
            for t in range(start[k], start[k + 1]):
                p = pix[t]
                x = p // w
                y = p - x * w
                outside = 0
                for ii in range(max(x - 1, 0), min(x + 2, h)):
                    for jj in range(max(y - 1, 0), min(y + 2, w)):
                        if inside[ii, jj]:
                            continue
                        outside += 1
                        if heatmaps:
                            if argmax_of[ii, jj] < 0:
                                argmax_of[ii, jj] = _argmax(probs, ii, jj)
                            ndist_v[k, argmax_of[ii, jj]] += 1
                        r = rest_id[ii, jj]
                        if r > 0 and last[r] != k + 1:
                            last[r] = k + 1
                            union_v[k] += rest_start[r] - rest_start[r - 1]
                region = BOUNDARY if outside else INTERIOR
                if outside:
                    comp[x, y] = -(k + 1)
                size_v[k, region] += 1
                inter_v[k] += other[x, y] != 0
                x_v[k] += x
                y_v[k] += y

                entropy = 0
                top1 = -1
                top2 = -1
                best = 0
                for c in range(nclasses):
                    prob = _as_float(probs[c, x, y])
                    cprob_v[k, c] += prob
                    if heatmaps:
                        entropy += prob * log(prob + FLT_EPSILON)
                    if prob > top1:  # strict: ties go to the first class, as np.argmax
                        top2 = top1
                        top1 = prob
                        best = c
                    elif prob > top2:
                        top2 = prob
                pred_v[k, best] += 1
                if not heatmaps:
                    continue
                # the original's normalised entropy keeps its eps; D and V use the two largest probs
                values[0] = -entropy / log_nclasses
                values[1] = 1 - top1 + top2
                values[2] = 1 - top1
                for i in range(3):
                    value = values[i]
                    heat_v[k, i, region] += value
                    heat_sq_v[k, i, region] += value * value

    sums = dict(size=size, intersection=intersection, union_rest=union_rest, x_sum=x_sum, y_sum=y_sum,
                first_pixel=pixels[starts[:n]], cprob=cprob, pred_count=pred_count, ndist=ndist,
                heat=heat, heat_sq=heat_sq)
    return labels, sums


cdef inline int _argmax(const stored_float[:, :, ::1] probs, Py_ssize_t x, Py_ssize_t y) noexcept nogil:
    cdef int c, best = 0
    cdef float prob, top = _as_float(probs[0, x, y])
    for c in range(1, probs.shape[0]):
        prob = _as_float(probs[c, x, y])
        if prob > top:
            top = prob
            best = c
    return best


cdef int _label(const unsigned char[:, ::1] mask, int[:, ::1] labels, Py_ssize_t[::1] pixels,
                Py_ssize_t[::1] starts) noexcept nogil:
    """Label the 8-connected components of mask 1..n in the order a row-major scan meets them.

    Breadth-first: `pixels` doubles as the queue, so it ends up holding every component's pixels
    together, component k (1-based) in pixels[starts[k-1]:starts[k]]. Returns n.
    """
    cdef Py_ssize_t h = mask.shape[0], w = mask.shape[1]
    cdef Py_ssize_t i, j, ii, jj, x, y, p, head, tail = 0
    cdef int n = 0
    for i in range(h):
        for j in range(w):
            if not mask[i, j] or labels[i, j]:
                continue
            n += 1
            starts[n - 1] = tail
            labels[i, j] = n
            pixels[tail] = i * w + j
            tail += 1
            head = tail - 1
            while head < tail:
                p = pixels[head]
                head += 1
                x = p // w
                y = p - x * w
                for ii in range(max(x - 1, 0), min(x + 2, h)):
                    for jj in range(max(y - 1, 0), min(y + 2, w)):
                        if mask[ii, jj] and not labels[ii, jj]:
                            labels[ii, jj] = n
                            pixels[tail] = ii * w + jj
                            tail += 1
    starts[n] = tail
    return n
