"""Stage-3 passes over an inference cache: pixel metrics of every score, and component metrics."""
import numpy as np
from tqdm import tqdm

from src.cache import read_cache
from src.evaluation.component_metrics import ComponentMetrics
from src.evaluation.pixel_metrics import PixelMetrics
from src.evaluation.scores import anomaly_score, meta_classified_score


def binary_labels(gt_train, in_id, out_id):
    """(H, W) uint8 in the evaluation encoding: 0 in-distribution, 1 OoD, 255 everything else."""
    label = np.full(gt_train.shape, 255, dtype=np.uint8)
    label[gt_train == in_id] = 0
    label[gt_train == out_id] = 1
    return label


def pixel_metrics(cache_files, in_id, out_id, scores, class_stats=None, removed_masks=None, threshold=None,
                  desc="pixel metrics"):
    """{score name: PixelMetrics} over the labelled images of `cache_files`.

    removed_masks: None, or a function image index -> (H, W) bool of pixels in segments the meta
    classifier removed; then the entropy score is also evaluated after meta classification
    (`meta_classified_score` with the segment search's `threshold`), as "entropy+meta".
    """
    metrics = {name: PixelMetrics() for name in scores}
    if removed_masks is not None:
        metrics["entropy+meta"] = PixelMetrics()
    for index, path in enumerate(tqdm(cache_files, desc=desc, unit="image")):
        cache = read_cache(path)
        if not cache["has_label"]:
            continue
        label = binary_labels(cache["gt_train"], in_id, out_id)
        valid = label != 255
        is_ood = label[valid] == 1
        for name in scores:
            score = cache["entropy"] if name == "entropy" else \
                anomaly_score(name, cache["probs"], cache["max_logit"], class_stats)
            metrics[name].update(score[valid], is_ood)
            if name == "entropy" and removed_masks is not None:
                metrics["entropy+meta"].update(meta_classified_score(score, removed_masks(index), threshold)[valid],
                                               is_ood)
    return metrics


def component_metrics(cache_files, in_id, out_id, tau, segsize, instsize, removed_masks=None, threshold=None,
                      desc="component metrics"):
    """ComponentMetrics of the entropy score (optionally after meta classification, as in `pixel_metrics`)
    over the labelled images."""
    metrics = ComponentMetrics(tau, segsize, instsize)
    for index, path in enumerate(tqdm(cache_files, desc=desc, unit="image")):
        cache = read_cache(path, ("entropy", "gt_train"))
        if not cache["has_label"]:
            continue
        score = cache["entropy"]
        if removed_masks is not None:
            score = meta_classified_score(score, removed_masks(index), threshold)
        metrics.update(score, binary_labels(cache["gt_train"], in_id, out_id))
    return metrics
