"""Slow, straightforward references of the evaluation protocols, written from the definitions of the code they
reproduce: robin-chan/meta-ood (evaluation.py counts / oodd_metrics_pixel, src/calc.py, src/helper.py) and
SegmentMeIfYouCan/road-anomaly-benchmark (metrics/pixel_classification.py, pixel_classification_curves.py,
instance_segmentation.py): np.histogram, np.quantile, materialised pixel lists, per-component loops.
Each takes an iterable of (score (H, W) float, label (H, W) uint8 0 / 1 / 255) frames and reads it once; the
SegmentMeIfYouCan ones follow its newest commit (1c7804e) with the numpy 1.23 it pins, on the maps as stored
(their dtype and values), and where numpy 2 computes otherwise (np.quantile, scalar casting, np.argsort's order
of equal values) they spell numpy 1.23's way out (np.quantile computes as in numpy 1.23).
Used by tests/test_protocols.py and, as the references' speed, by bench/protocols.py."""
import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, average_precision_score, roc_curve

from src.evaluation.legacy_argsort import argsort_numpy123


def meta_ood_reference(frames):
    bins = np.linspace(start=0, stop=1, num=101)
    counts_in, counts_out = np.zeros(100, dtype="int64"), np.zeros(100, dtype="int64")
    for score, label in frames:
        counts_in += np.histogram(score[label == 0], bins=bins, density=False)[0]
        counts_out += np.histogram(score[label == 1], bins=bins, density=False)[0]

    def data_list(counts, size):  # every rescaled pixel as its bin number 1..100
        counts = (counts / np.sum(counts) * size).astype("uint32")
        return [i for i in range(1, 101) for _ in range(counts[i - 1])]

    def labelled(x1, x2):
        y = np.concatenate((np.zeros(len(x1)), np.ones(len(x2)))).astype("uint8")
        return y, np.concatenate((np.array(x1) / 100, np.array(x2) / 100))

    fpr, tpr, _ = roc_curve(*labelled(data_list(counts_in, 1e+5), data_list(counts_out, 1e+5)))
    ratio_in = np.sum(counts_in) / (np.sum(counts_in) + np.sum(counts_out))
    y, s = labelled(data_list(counts_in, 1e+7 * ratio_in), data_list(counts_out, 1e+7 * (1 - ratio_in)))
    return auc(fpr, tpr), average_precision_score(y, s), fpr[(np.abs(tpr - 0.95)).argmin()], counts_in, counts_out


def smiyc_frame_reference(anomaly_p, label_pixel_gt, num_bins=768):
    """The benchmark's binary_confusion_matrix with percentile bins on one frame: (thresholds descending,
    tp_rel, fp_rel, num_pos, num_neg)."""
    roi = label_pixel_gt < 255
    prob, gt = anomaly_p[roi], label_pixel_gt[roi].astype(bool)
    prob_true, prob_false = prob[gt], prob[~gt]
    vmin, vmax = np.min(prob), np.max(prob)
    vrange = float(vmax - vmin)  # in the map's dtype; numpy 1.23 then multiplies in float64
    eps = max(vrange * 1e-2, 1e-2)
    bins = [[float(vmin) - eps, float(vmax) + eps]]
    if prob_true.size:
        bins.append(np.quantile(prob_true, np.linspace(0, 1, min(num_bins // 2, prob_true.size))))
    if prob_false.size:
        bins.append(np.quantile(prob_false, np.linspace(0, 1, min(num_bins // 2, prob_false.size))))
    bins = np.unique(np.concatenate(bins))
    tp_rel = np.histogram(prob_true.astype(np.float64), bins=bins)[0][::-1]
    fp_rel, edges = np.histogram(prob_false.astype(np.float64), bins=bins)
    return edges[::-1][1:], tp_rel, fp_rel[::-1], gt.sum(), (~gt).sum()


def smiyc_pixel_reference(frames):
    """The benchmark's PixBinaryClass over `frames` (maps as stored): auroc, ap, fpr95, f1_threshold, best_f1."""
    per_frame = [smiyc_frame_reference(score, label) for score, label in frames]
    thresholds = np.concatenate([f[0] for f in per_frame])
    order = argsort_numpy123(thresholds)[::-1]  # np.argsort of the benchmark's numpy 1.23
    tp_c = np.cumsum(np.concatenate([f[1] for f in per_frame])[order].astype(np.float64))
    fp_c = np.cumsum(np.concatenate([f[2] for f in per_frame])[order].astype(np.float64))
    num_pos, num_neg = sum(f[3] for f in per_frame), sum(f[4] for f in per_frame)
    thresholds = thresholds[order]
    cmats = np.array([[tp_c, fp_c], [num_pos - tp_c, num_neg - fp_c]]).transpose([2, 0, 1])
    unique = np.concatenate([[0], np.nonzero(thresholds[:-1] != thresholds[1:])[0], [len(cmats) - 1]])
    cmats, thresholds = cmats[unique], thresholds[unique]
    tp, fp, fn, tn = cmats[:, 0, 0], cmats[:, 0, 1], cmats[:, 1, 0], cmats[:, 1, 1]
    pos, neg = tp[0] + fn[0], fp[0] + tn[0]
    if tp[0] != 0 or fp[0] != 0:
        tp, fp, fn, tn = np.r_[0, tp], np.r_[0, fp], np.r_[pos, fn], np.r_[neg, tn]
        thresholds = np.r_[float(np.max(thresholds)) + 1, thresholds]
    if tp[-1] != pos or fp[-1] != neg:
        tp, fp, fn, tn = np.r_[tp, pos], np.r_[fp, neg], np.r_[fn, 0], np.r_[tn, 0]
        thresholds = np.r_[thresholds, float(np.max(thresholds)) - 1]
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    precision = np.ones(len(tp))
    precision[tp + fp > 0] = tp[tp + fp > 0] / (tp + fp)[tp + fp > 0]
    f1 = 2 * tp / (2 * tp + fp + fn)
    i95 = np.searchsorted(tpr, 0.95)
    best = np.nanargmax(f1)
    return dict(auroc=np.trapezoid(tpr, fpr), ap=np.sum(np.diff(tpr) * precision[1:]),
                fpr95=fpr[i95] if i95 < len(tpr) else 1.0, f1_threshold=float(thresholds[best]), best_f1=f1[best])


def numpy123_greater(anomaly_p, thresh_p):
    """anomaly_p > thresh_p (a float64 scalar) as numpy 1.23 compares them: the scalar takes the smallest float
    type that holds its value's range (float16 within +-65000, float32 within +-3.4e38), promoted with the map's."""
    if not np.isfinite(thresh_p) or -65000 < thresh_p < 65000:
        scalar = np.float16
    elif -3.4e38 < thresh_p < 3.4e38:
        scalar = np.float32
    else:
        scalar = np.float64
    dtype = np.promote_types(anomaly_p.dtype, scalar)
    return anomaly_p.astype(dtype) > dtype.type(thresh_p)


def benchmark_instances(anomaly_p, label_pixel_gt, thresh_p, segsize, instsize):
    structure = np.ones((3, 3), dtype=np.uint8)
    pred = numpy123_greater(anomaly_p, thresh_p) & (label_pixel_gt != 255)
    gt_inst, n_gt = ndimage.label(label_pixel_gt == 1, structure)
    pred_inst, n_pred = ndimage.label(pred, structure)
    for comp in range(n_pred + 1):
        if np.sum(pred_inst == comp) < segsize:
            pred_inst[pred_inst == comp] = 0
    label = label_pixel_gt.copy()
    for comp in range(n_gt + 1):  # comp 0, the background, included
        if np.sum(gt_inst == comp) < instsize:
            label[gt_inst == comp] = 255
    roi = label < 255
    return gt_inst[roi], pred_inst[roi]


def benchmark_segment_metrics(gt, pred):
    siou = []
    for i in np.unique(gt[gt > 0]):
        hit = np.unique(pred[(gt == i) & (pred > 0)])
        inter = np.sum((gt == i) & np.isin(pred, hit))
        adjustment = np.sum(~np.isin(gt, [0, i]) & np.isin(pred, hit))
        siou.append(inter / (np.sum(np.isin(pred, hit)) + np.sum(gt == i) - inter - adjustment))
    precision, siou_pred = [], []
    for j in np.unique(pred[pred > 0]):  # the benchmark also computes each prediction's sIoU (not reported)
        hit = np.unique(gt[(pred == j) & (gt > 0)])
        inter = np.sum((pred == j) & np.isin(gt, hit))
        adjustment = np.sum(~np.isin(pred, [0, j]) & np.isin(gt, hit))
        siou_pred.append(inter / (np.sum(np.isin(gt, hit)) + np.sum(pred == j) - inter - adjustment))
        precision.append(inter / np.sum(pred == j))
    return np.array(siou), np.array(precision)


def smiyc_component_reference(frames, tau, segsize, instsize):
    siou, prec = [], []
    for score, label in frames:
        s, p = benchmark_segment_metrics(*benchmark_instances(score, label, tau, segsize, instsize))
        siou.append(s)
        prec.append(p)
    siou, prec = np.concatenate(siou), np.concatenate(prec)
    f1 = [2 * np.sum(siou >= t) / (2 * np.sum(siou >= t) + np.sum(siou < t) + np.sum(prec < t))
          for t in np.linspace(0.25, 0.75, 11, endpoint=True)]
    return dict(siou_gt=siou.mean(), ppv=prec.mean(), mean_f1=np.mean(f1))
