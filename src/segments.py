"""The OoD segments of a score source (src/score_source.py): the search of every frame, the meta classifier
that removes false positives among them, and reading both back. One path for a checkpoint's entropy and for
any method's score maps."""
import os
import shutil

import numpy as np

from src import distributed, layout
from src.errors import UserError
from src.evaluation.measure import binary_labels
from src.evaluation.segment_components import SegmentComponents, best_cut, image_table
from src.external_maps import frame_train_ids
from src.files import atomic_path, load_npz, save_json
from src.meta_classifier import (SETTINGS, classifier_scores, cross_validated_decision, cross_validated_fp_probability,
                                 segments_to_dataset)
from src.metaseg.segment_search import searched_checkpoint, segments_path
from src.runtime import run_jobs


def search_segments(source, out_dir, threshold, record, workers, ctx, note=""):
    """Segments of every frame of `source` at score >= threshold without a results file in `out_dir` (this
    rank's share), in `workers` processes; `record` (what they are made from under "checkpoint", the settings)
    goes to segments.json. Results of other inputs there are deleted first. note: said after the threshold."""
    if ctx.is_main and searched_checkpoint(out_dir) not in (None, record["checkpoint"]):
        print(f"-segment: the results in {out_dir} come from other inputs (another checkpoint's cache, other score "
              "maps, labels, images or metric families); searching again")
        shutil.rmtree(out_dir)
    distributed.barrier(ctx)
    todo = [i for i in range(len(source)) if not os.path.isfile(segments_path(out_dir, i))]
    if ctx.is_main:
        print(f"-segment: score >= {threshold:.6g}{note}; {len(source) - len(todo)} of {len(source)} frames already "
              f"searched in {out_dir}")
        save_json({**record, "threshold": threshold, "num_images": len(source)}, layout.segments_record(out_dir))
    jobs = [source.search_job(i, segments_path(out_dir, i), threshold) for i in distributed.shard_listed(todo, ctx)]
    if jobs:  # no pool of workers for nothing
        run_jobs(source.search, jobs, workers, dict(desc="segment search", unit="frame", disable=not ctx.is_main))
    distributed.barrier(ctx)


def require_labels(dataset, name):
    if not any(dataset.has_label(i) for i in range(len(dataset))):
        raise UserError(f"-removal: none of the {len(dataset)} frames of {name} has labels, and the meta classifier "
                        "learns from them; run it on a labelled set")


def segment_components(dataset, results, segsize, instsize):
    """The component tables of the segments `results` of every frame (src/evaluation/segment_components.py), from
    the frames' labels: what the cut of a *_f1 meta classifier is chosen on."""
    tables = []
    for i, result in enumerate(results):
        gt_train = frame_train_ids(dataset, i)
        label = (np.full(result["components"].shape, 255, np.uint8) if gt_train is None else
                 binary_labels(gt_train, dataset.train_id_in, dataset.train_id_out))
        tables.append(image_table(result["components"], label, segsize, instsize))
    return SegmentComponents(tables)


def remove_false_positives(dataset, results, out_dir, setting, meta_cv, component_sizes, record):
    """The cross-validated meta classifier `setting` (src/meta_classifier.py SETTINGS; meta_cv kfold or loo) on the
    segment `results` of `dataset`; saves meta_classifier.npz / .json in `out_dir` (the .json with `record`: the
    settings, metric families, ...) and prints its scores. component_sizes: (segsize, instsize) of the set."""
    X, y, groups, names = segments_to_dataset([r["metrics"] for r in results])
    if meta_cv == "loo" and setting != "paper":
        raise UserError(f"--meta_classifier {setting} needs --meta_cv kfold: leave-one-segment-out is the published "
                        "protocol of the logistic regression alone; pass --meta_classifier paper --meta_cv loo for it")
    try:
        if meta_cv == "loo":
            prob = cross_validated_fp_probability(X, y, groups, mode="loo")
            removed, cut = prob >= 0.5, np.full(len(y), 0.5)
        else:
            components = segment_components(dataset, results, *component_sizes) if SETTINGS[setting][1] == "f1" \
                else None
            prob, removed, cut = cross_validated_decision(
                X, y, groups, setting, lambda train, inner: best_cut(components, _spread(inner, train, len(y)),
                                                                     np.unique(groups[train])))
    except ValueError as error:
        raise UserError(f"-removal: the meta classifier cannot train: {error}")
    scores = classifier_scores(y, prob)
    with atomic_path(layout.meta_classifier_file(out_dir)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, fp_probability=prob, removed=removed, image=groups, iou0=y, cut=cut)
    summary = {**scores, "num_segments": int(len(y)), "num_false_positives": int(y.sum()),
               "removed": int(removed.sum()), "removed_false_positives": int((removed & (y == 1)).sum()),
               "meta_cv": meta_cv, "meta_classifier": setting,
               "cuts": [c if np.isfinite(c) else None for c in sorted(set(cut.tolist()))],  # None: removes none
               **record, "features": names}
    save_json(summary, layout.meta_classifier_file(out_dir, "json"))
    print(f"-removal: meta classifier ({setting}, {meta_cv}) on {len(y)} segments ({int(y.sum())} false "
          f"positives): AUROC {scores['auroc']:.4f}, AP {scores['ap']:.4f}, accuracy {scores['accuracy']:.4f}; "
          f"removes {int(removed.sum())} segments, {summary['removed_false_positives']} of them false positives")


def _spread(values, index, n):
    """(n,) float64 holding `values` at `index` and NaN elsewhere (the cut search only reads `index`)."""
    out = np.full(n, np.nan)
    out[index] = values
    return out


def load_removed(out_dir, results, make_command):
    """Per frame, the bool array of the segments of `results` the meta classifier in `out_dir` removes; UserError
    naming `make_command` (-removal) when it is missing or made for other segments."""
    path = layout.meta_classifier_file(out_dir)
    if not os.path.isfile(path):
        raise UserError(f"{path} is missing; train the meta classifier with: {make_command}")
    data = load_npz(path, f"train it again with: {make_command}")
    removed, image = data["removed"], data["image"]
    if len(removed) != sum(len(r["metrics"]["iou0"]) for r in results):
        raise UserError(f"{path} does not match the segment results beside it; train it again with: {make_command}")
    return [removed[image == i] for i in range(len(results))]


def load_segments_and_removal(source, out_dir, hint, with_meta, optional, threshold):
    """(segments.json record, segment results, segments the meta classifier removes per frame) of `source` in
    `out_dir`, None for what has not been made, with a line saying how to make it. hint(stage): the command that
    runs a stage (-segment, -removal); optional: the segments may be missing (any method's maps; a checkpoint's
    are required and their absence is a UserError); threshold: the record's threshold where it names none (a
    checkpoint's segments.json of before 2026-12)."""
    if optional and not os.path.isfile(layout.segments_record(out_dir)):
        print(f"No segment rows: the maps' segments are not searched; search them and train the meta classifier "
              f"with {hint('-segment -removal')}")
        return None, None, None
    record, results = source.searched(out_dir, hint("-segment"))
    record.setdefault("threshold", threshold)
    if not with_meta:
        return record, results, None
    if optional and not os.path.isfile(layout.meta_classifier_file(out_dir)):
        print(f"No '+ meta classifier' row: train it with {hint('-removal')}")
        return record, results, None
    if not any(len(r["metrics"]["iou0"]) for r in results):
        at = "the maps' threshold" if optional else "-threshold"
        print(f"No '+ meta classifier' row: no OoD segments were found at {at} {record['threshold']}, so there is "
              "nothing for it to remove")
        return record, results, None
    return record, results, load_removed(out_dir, results, hint("-removal"))
