"""Stage 3's two passes over a score source (src/score_source.py): every protocol's pixel metrics of its
scores and of the maps after the meta classifier, then their component metrics."""
import numpy as np
from tqdm import tqdm

from src.evaluation.protocols import build_protocol

# the meta classifier changes few pixels of a map: the first pass keeps them (index and value) for the second
# pass, up to this many bytes over all frames, and computes the filtered maps of the frames beyond it again
KEPT_CHANGES_BYTES = 1 << 29


def binary_labels(gt_train, in_id, out_id):
    """(H, W) uint8 in the evaluation encoding: 0 in-distribution, 1 OoD, 255 everything else."""
    label = np.full(gt_train.shape, 255, dtype=np.uint8)
    label[gt_train == in_id] = 0
    label[gt_train == out_id] = 1
    return label


def measure(source, scores, protocols, segsize, instsize, filtered=None, at_threshold=None, name="scores"):
    """{protocol: {key: protocol.compute()}} of the labelled frames of `source`.

    scores: names of the source's scores (source.frames), measured as it stores them; filtered: {key: function
    (i, source score) -> the map after the meta classifier}, measured too, in float16 for smiyc as --export_smiyc
    writes them. The source's own score and each filtered map also get the component metrics of every protocol
    (the threshold of each comes from the first pass) and those of at_threshold[key] (ComponentMetrics at the
    segment threshold; key source.score_name or a key of `filtered`).
    meta-ood bins [0, 1]: it measures source.unit_scores and the filtered maps, and leaves out a map with a
    score outside [0, 1], with a line saying so. segsize, instsize: of the component metrics; name: of the row,
    for the progress bars and those lines.
    """
    filtered, at_threshold = filtered or {}, at_threshold or {}
    main = source.score_name

    def dtype(key):
        return source.stored_dtype if key in scores else np.float16

    left_out = [key for key in scores if key not in source.unit_scores]
    if "meta-ood" in protocols and left_out:
        print(f"meta-ood protocol: {', '.join(left_out)} of {name} left out of it: it bins scores on [0, 1] (the "
              "other protocols have them)")
    labelled = sum(source.dataset.has_label(i) for i in range(len(source)))
    accumulators = {p: {key: build_protocol(p, segsize, instsize, dtype(key)) for key in [*scores, *filtered]
                        if p != "meta-ood" or key in source.unit_scores or key in filtered} for p in protocols}
    changes, kept_bytes = {}, 0  # (key, i) -> (pixel indices, their values, dtype) of the filtered map
    for i, maps, label in tqdm(source.frames(scores), total=labelled, desc=f"pixel metrics, {name}", unit="frame"):
        for key, function in filtered.items():
            maps[key] = function(i, maps[main])
            index = np.flatnonzero(maps[key] != maps[main])
            if kept_bytes + 12 * index.size <= KEPT_CHANGES_BYTES:
                changes[key, i] = index.astype(np.int32), maps[key].ravel()[index], maps[key].dtype
                kept_bytes += 12 * index.size
        for p, by_key in accumulators.items():
            for key in list(by_key):
                try:
                    by_key[key].update(maps[key], label)
                except ValueError as error:
                    if p != "meta-ood":
                        raise
                    print(f"meta-ood protocol skipped for {key}: {error}")
                    del by_key[key]
    passes = {key: [c for c in (accumulators[p][key].components() for p in protocols if key in accumulators[p])
                    if c is not None] + ([at_threshold[key]] if key in at_threshold else [])
              for key in [main, *filtered]}
    if any(passes.values()):
        for i, maps, label in tqdm(source.frames([main]), total=labelled, desc=f"component metrics, {name}",
                                   unit="frame"):
            for key, components in passes.items():
                if key == main:
                    score = maps[main]
                elif (key, i) in changes:
                    index, values, dtype = changes[key, i]
                    score = maps[main].astype(dtype)
                    score.ravel()[index] = values
                else:
                    score = filtered[key](i, maps[main])
                for c in components:
                    c.update(score, label)
    return {p: {key: a.compute() for key, a in by_key.items()} for p, by_key in accumulators.items()}
