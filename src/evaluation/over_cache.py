"""Stage-3 passes over an inference cache: pixel metrics of every score under each protocol, and component metrics."""
import numpy as np
from tqdm import tqdm

from src.cache import read_cache
from src.evaluation.protocols import build_protocol
from src.evaluation.scores import anomaly_score

UNIT_SCORES = ("entropy", "max_softmax", "entropy+meta")  # the scores that lie in [0, 1]


def binary_labels(gt_train, in_id, out_id):
    """(H, W) uint8 in the evaluation encoding: 0 in-distribution, 1 OoD, 255 everything else."""
    label = np.full(gt_train.shape, 255, dtype=np.uint8)
    label[gt_train == in_id] = 0
    label[gt_train == out_id] = 1
    return label


def pixel_metrics(cache_files, in_id, out_id, scores, protocols, segsize, instsize, class_stats=None,
                  meta_filter=None, desc="pixel metrics"):
    """{protocol: {score name: accumulator of protocols.build_protocol}} over the labelled images of `cache_files`.

    protocols: names of src.evaluation.protocols.PROTOCOLS; meta-ood only sees the scores in [0, 1]
    (UNIT_SCORES), as it bins [0, 1]. meta_filter: None, or a function (image index, entropy) -> the entropy
    after the meta classifier ((H, W) float32, removed segments moved below the segment threshold); then that
    score is evaluated too, as "entropy+meta".
    segsize, instsize: for the protocols' component metrics.
    """
    names = list(scores) + (["entropy+meta"] if meta_filter is not None else [])
    # smiyc evaluates these scores as --export_smiyc stores them, in float16
    metrics = {p: {name: build_protocol(p, segsize, instsize, np.float16) for name in names
                   if p != "meta-ood" or name in UNIT_SCORES} for p in protocols}
    for index, path in enumerate(tqdm(cache_files, desc=desc, unit="image")):
        cache = read_cache(path)
        if not cache["has_label"]:
            continue
        label = binary_labels(cache["gt_train"], in_id, out_id)
        for name in names:
            if name == "entropy+meta":
                score = meta_filter(index, cache["entropy"])
            elif name == "entropy":
                score = cache["entropy"]
            else:
                score = anomaly_score(name, cache["probs"], cache["max_logit"], class_stats, cache.get("logsumexp"))
            for by_score in metrics.values():
                if name in by_score:
                    by_score[name].update(score, label)
    return metrics


def component_metrics(cache_files, in_id, out_id, accumulators, meta_filter=None, at_threshold=(),
                      desc="component metrics"):
    """The component pass of each protocol accumulator in `accumulators` (filled by pixel_metrics with the
    entropy score, optionally after the meta classifier: `meta_filter` as in pixel_metrics) over the labelled
    images, and of the ComponentMetrics in `at_threshold` (those at the segment threshold); returns nothing,
    each protocol accumulator's compute() then holds its "component" metrics."""
    passes = [p for p in (a.components() for a in accumulators) if p is not None] + list(at_threshold)
    if not passes:
        return
    for index, path in enumerate(tqdm(cache_files, desc=desc, unit="image")):
        cache = read_cache(path, ("entropy", "gt_train"))
        if not cache["has_label"]:
            continue
        score = cache["entropy"] if meta_filter is None else meta_filter(index, cache["entropy"])
        label = binary_labels(cache["gt_train"], in_id, out_id)
        for components in passes:
            components.update(score, label)
