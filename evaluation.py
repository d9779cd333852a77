"""Stage 3: pixel- and segment-level OoD detection metrics, plots, overlays and results files.

Without stage flags it runs -pixel -segment. It compares the baseline (epoch 0, when its cache exists),
the evaluated checkpoint (-epoch) and the evaluated checkpoint plus the meta classifier.
"""
import dataclasses
import json
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

import config
from src import distributed
from src.cache import cache_path, checked_cache, checkpoint_identity, read_cache
from src.dataset import Cityscapes, build_valset, transforms as T
from src.errors import UserError
from src.files import atomic_path, save_json
from src.metaseg.segment_search import load_all_segments
from src.model import infer_dataset, load_model
from src.oodmc.moments import moment_features
from src.oodmc.svm import decision_map, hard_decision_counts, hard_decision_metrics, load_svm
from src.evaluation.over_cache import binary_labels, component_metrics, pixel_metrics
from src.evaluation.pixel_metrics import PixelMetrics
from src.evaluation.plots import frames_to_show, save_curves, save_overlay
from src.evaluation.report import oodmc_table, results_table, save_report
from src.runtime import use_amp
from src.evaluation.score_maps import score_map_path, write_score_map
from src.evaluation.scores import SCORES, ClassStats
from src.evaluation.segment_errors import count_segment_errors

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "stages": config.EvalStages, "oodmc": config.Oodmc}

# (segsize, instsize) of the SegmentMeIfYouCan component metrics: obstacle-type and anomaly-type sets
COMPONENT_SIZES = {"LostAndFound": (50, 10), "RoadObstacle21": (50, 10), "Fishyscapes": (500, 100),
                   "RoadAnomaly21": (500, 100)}


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def epoch_cache(cfg, dataset, epoch):
    """The inference cache files of checkpoint `epoch`, checked to be complete and made by it."""
    return checked_cache(config.cache_dir(cfg, epoch), len(dataset),
                         checkpoint_identity(config.evaluated_checkpoint(cfg, epoch)),
                         config.stage_command(cfg, epoch, "-prepare"))


def sml_stats_path(checkpoint):
    return os.path.splitext(checkpoint)[0] + "_sml.json"


def measure_sml_stats(cfg, ctx, epoch):
    """Class-wise mean and std of the max logit of checkpoint `epoch` on Cityscapes train, saved beside it."""
    checkpoint = config.evaluated_checkpoint(cfg, epoch)
    model = load_model(cfg.model.MODEL, checkpoint, ctx.device, config.NUM_CLASSES)
    dataset = Cityscapes(cfg.paths.cityscapes, "train", T.Compose([T.ToTensor(), T.Normalize()]))
    stats = ClassStats(config.NUM_CLASSES)
    for _, logits, _ in infer_dataset(model, dataset, ctx.device, use_amp(cfg.run.amp, ctx.device),
                                      num_workers=cfg.run.num_workers):
        max_logit, pred = logits.max(0)
        stats.update(max_logit.cpu().numpy(), pred.cpu().numpy())
    save_json({**stats.to_dict(), "checkpoint": checkpoint_identity(checkpoint)}, sml_stats_path(checkpoint))
    print(f"--sml_stats: max-logit statistics of {len(dataset)} Cityscapes train images -> {sml_stats_path(checkpoint)}")


def load_sml_stats(checkpoint):
    """The SML statistics measured for `checkpoint`, or None when there are none (or they are stale)."""
    path = sml_stats_path(checkpoint)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        stats = json.load(f)
    if stats.pop("checkpoint") != checkpoint_identity(checkpoint):
        return None
    return ClassStats.from_dict(stats)


def removed_masks_of(results, removed):
    """image index -> (H, W) bool of the pixels of segments the meta classifier removed."""
    def mask(i):
        removed_ids = np.flatnonzero(removed[i]) + 1
        return np.isin(np.abs(results[i]["components"]), removed_ids)
    return mask


def load_meta_classifier(cfg, epoch, results):
    """Per image, bool array of the segments the meta classifier removes (from meta_classification.py -removal)."""
    path = os.path.join(config.segments_dir(cfg, epoch), "meta_classifier.npz")
    if not os.path.isfile(path):
        raise SystemExit(f"{path} is missing; train the meta classifier with: "
                         f"{config.stage_command(cfg, epoch, '-removal')}")
    with np.load(path) as data:
        removed, image = data["removed"], data["image"]
    if len(removed) != sum(len(r["metrics"]["iou0"]) for r in results):
        raise SystemExit(f"{path} does not match the segment results beside it; rerun: "
                         f"{config.stage_command(cfg, epoch, '-removal')}")
    return [removed[image == i] for i in range(len(results))]


def evaluate_checkpoint(cfg, dataset, epoch, with_meta):
    """Every metric of one checkpoint (and, with_meta, of it plus the meta classifier): a dict of rows."""
    checkpoint = config.evaluated_checkpoint(cfg, epoch)
    cache_files = epoch_cache(cfg, dataset, epoch)
    name = "baseline" if epoch == 0 else f"{cfg.model.optim_target} training (epoch {epoch})"
    rows = {name: {"checkpoint": checkpoint}}
    removed = results = None
    if cfg.stages.segment_eval or with_meta:
        results = load_all_segments(config.segments_dir(cfg, epoch), len(dataset), checkpoint_identity(checkpoint),
                                    config.stage_command(cfg, epoch, "-segment"))
        fp, fn = count_segment_errors(results)
        rows[name]["segments"] = {"fp": fp, "fn": fn}
    if with_meta:
        removed = load_meta_classifier(cfg, epoch, results)
        fp, fn = count_segment_errors(results, removed)
        rows["+ meta classifier"] = {"checkpoint": checkpoint, "segments": {"fp": fp, "fn": fn}}
    if cfg.stages.pixel_eval:
        stats = load_sml_stats(checkpoint)
        scores = [s for s in SCORES if s != "sml" or stats is not None]
        if stats is None:
            print(f"SML skipped for {checkpoint}: measure its statistics with `python evaluation.py --sml_stats "
                  f"-epoch {epoch} ...` (the same flags)")
        masks = removed_masks_of(results, removed) if with_meta else None
        threshold = cfg.evalset.entropy_threshold
        pixels = pixel_metrics(cache_files, dataset.train_id_in, dataset.train_id_out, scores, stats, masks, threshold,
                               desc=f"pixel metrics, {name}")
        segsize, instsize = COMPONENT_SIZES[cfg.evalset.VALSET]
        for row, key, row_masks in ((name, "entropy", None), ("+ meta classifier", "entropy+meta", masks)):
            if key not in pixels:
                continue
            computed = {s: pixels[s].compute() for s in pixels if s == key or (row == name and s in scores)}
            tau = computed[key]["f1_threshold"]
            components = component_metrics(cache_files, dataset.train_id_in, dataset.train_id_out, tau, segsize,
                                           instsize, row_masks, threshold, desc=f"component metrics, {row}")
            rows[row]["pixel"] = computed
            rows[row]["component"] = {**components.compute(), "tau": tau, "segsize": segsize, "instsize": instsize}
    return rows, results, removed


def export_smiyc(cfg, dataset, epoch, out_dir):
    """Each frame's anomaly score (normalised entropy) as SegmentMeIfYouCan submission files <frame>.hdf5."""
    cache_files = epoch_cache(cfg, dataset, epoch)
    for i, path in enumerate(tqdm(cache_files, desc="SMIYC export", unit="image")):
        score = read_cache(path, ("entropy",))["entropy"]
        write_score_map(score_map_path(out_dir, dataset.frame_name(i)), score)
    print(f"--export_smiyc: {len(cache_files)} score maps -> {out_dir}")


def named_frames(cfg, dataset):
    """Indices of the frames --visualize_frames names (None when it is empty), checked before any work."""
    if not cfg.stages.visualize_frames:
        return None
    index = {dataset.frame_name(i): i for i in range(len(dataset))}
    names = [name.strip() for name in cfg.stages.visualize_frames.split(",") if name.strip()]
    unknown = [name for name in names if name not in index]
    if unknown:
        raise UserError(f"no frame named {', '.join(unknown)} in {config.valset_name(cfg)}, --visualize_frames; "
                        f"name frames such as {', '.join(list(index)[:3])}")
    return [index[name] for name in names]


def save_visualizations(cfg, dataset, epoch, results, removed, out_dir, frames=None):
    """Figure-7 overlays (image, entropy, OoD segments before and after the meta classifier) of `frames`, or
    else of the --num_visualizations frames that show the most (`frames_to_show`)."""
    if frames is None:
        frames = frames_to_show([r["metrics"]["S"] for r in results], [r["metrics"]["iou0"] for r in results],
                                removed, cfg.stages.num_visualizations)
    cache_dir = config.cache_dir(cfg, epoch)
    for i in frames:
        cache = read_cache(cache_path(cache_dir, i), ("entropy", "gt_train"))
        save_overlay(np.asarray(Image.open(dataset.images[i]).convert("RGB")),
                     binary_labels(cache["gt_train"], dataset.train_id_in, dataset.train_id_out),
                     cache["entropy"], results[i]["components"], np.asarray(results[i]["metrics"]["iou0"], bool),
                     removed[i], cfg.evalset.entropy_threshold,
                     os.path.join(out_dir, "overlays", f"{i:05d}_{dataset.frame_name(i)}.png"),
                     f"{config.valset_name(cfg)}, frame {dataset.frame_name(i)}: {config.run_name(cfg, epoch)}")


def evaluate_oodmc(cfg, ctx, dataset, epoch):
    """-moment: the OODMC SVM's decision function on its evaluation images, beside the entropy of the same
    checkpoint on the same images. Score maps are saved per image, so an interrupted run continues."""
    path = os.path.join(config.oodmc_dir(cfg, epoch), "svm.pkl")
    try:
        classifier, settings = load_svm(path)
    except FileNotFoundError:
        raise SystemExit(f"-moment: no OODMC classifier at {path}; train it with "
                         f"{config.stage_command(cfg, epoch, '-moment -SVM')}")
    except ValueError as error:
        raise SystemExit(f"-moment: {error}")
    cache_files = epoch_cache(cfg, dataset, epoch)
    out_dir = os.path.join(config.oodmc_dir(cfg, epoch), "scores")
    evaluated = settings["eval_images"]
    todo = [i for i in evaluated if not os.path.isfile(os.path.join(out_dir, f"{i:05d}.npy"))]
    mine = distributed.shard(todo, ctx)
    if mine:
        model = load_model(cfg.model.MODEL, config.evaluated_checkpoint(cfg, epoch), ctx.device, config.NUM_CLASSES)
        for i in tqdm(mine, desc="OODMC evaluation", unit="image", disable=not ctx.is_main):
            features = moment_features(model, dataset[i][0].to(ctx.device), **settings["moments"],
                                       seed=settings["seed"] + i, amp=use_amp(cfg.run.amp, ctx.device))
            with atomic_path(os.path.join(out_dir, f"{i:05d}.npy")) as tmp, open(tmp, "wb") as f:
                np.save(f, decision_map(classifier, features))
    distributed.barrier(ctx)
    if not ctx.is_main:
        return None
    svm, entropy, counts = PixelMetrics(), PixelMetrics(), 0
    for i in evaluated:
        cache = read_cache(cache_files[i], ("entropy", "gt_train"))
        label = binary_labels(cache["gt_train"], dataset.train_id_in, dataset.train_id_out)
        valid = label != 255
        score = np.load(os.path.join(out_dir, f"{i:05d}.npy"))
        svm.update(score[valid], label[valid] == 1)
        entropy.update(cache["entropy"][valid], label[valid] == 1)
        counts = counts + hard_decision_counts(score, label, 0, 1)
    report = {"num_images": len(evaluated), "svm": svm.compute(), "entropy": entropy.compute(),
              "hard_decision": hard_decision_metrics(counts), "settings": settings["moments"], "config": cfg.to_dict()}
    table = oodmc_table(report)
    save_report(config.results_dir(cfg, epoch), "oodmc", report,
                f"OODMC on {len(evaluated)} images of {config.valset_name(cfg)}: {config.run_name(cfg, epoch)}", table)
    print(table)
    return report


def main(cfg):
    ctx = distributed.init_distributed(cfg.run.device)
    stages = cfg.stages
    if not any((stages.pixel_eval, stages.segment_eval, stages.moment, stages.sml_stats, stages.export_smiyc)):
        cfg = dataclasses.replace(cfg, stages=dataclasses.replace(stages, pixel_eval=True, segment_eval=True))
    dataset = build_valset(cfg.evalset.VALSET, config.valset_root(cfg), cfg.evalset.fs_split)
    epoch = cfg.evalset.val_epoch
    frames = named_frames(cfg, dataset)
    if cfg.stages.moment:
        evaluate_oodmc(cfg, ctx, dataset, epoch)  # the one stage that shares its images between processes
    distributed.cleanup()
    if not ctx.is_main:
        return None
    if cfg.stages.sml_stats:
        for e in sorted({0, epoch}):
            if e == epoch or os.path.isfile(config.checkpoint_path(cfg, e) or ""):
                measure_sml_stats(cfg, ctx, e)
    if cfg.stages.export_smiyc:
        export_smiyc(cfg, dataset, epoch, cfg.stages.export_smiyc)
    if not (cfg.stages.pixel_eval or cfg.stages.segment_eval):
        return None
    unlabelled = sum(not dataset.has_label(i) for i in range(len(dataset)))
    if unlabelled == len(dataset):
        raise SystemExit(f"none of the {len(dataset)} frames of {config.valset_name(cfg)} has labels, so there is "
                         "nothing to measure; --export_smiyc writes the submission files without them")

    rows = {}
    if epoch != 0:
        if os.path.isfile(os.path.join(config.cache_dir(cfg, 0), "00000.h5")):
            rows.update(evaluate_checkpoint(cfg, dataset, 0, with_meta=False)[0])
        else:
            print(f"No baseline row: its cache is missing; make it with {config.stage_command(cfg, 0, '-prepare -segment')}")
    evaluated, results, removed = evaluate_checkpoint(cfg, dataset, epoch, with_meta=cfg.stages.segment_eval)
    rows.update(evaluated)

    out_dir = config.results_dir(cfg, epoch)
    if unlabelled:
        print(f"{unlabelled} of {len(dataset)} frames have no labels and are left out of the metrics")
    report = {"valset": config.valset_name(cfg), "num_images": len(dataset), "num_unlabelled": unlabelled,
              "rows": rows, "config": cfg.to_dict()}
    table = results_table(rows)
    save_report(out_dir, "results", report, f"{config.valset_name(cfg)}: {config.run_name(cfg, epoch)}", table)
    curves = {name: row["pixel"]["entropy+meta" if name == "+ meta classifier" else "entropy"]
              for name, row in rows.items() if "pixel" in row}
    if curves:
        save_curves(curves, os.path.join(out_dir, "roc.png"), os.path.join(out_dir, "pr.png"),
                    f"{config.valset_name(cfg)}, normalised entropy")
    if results is not None and removed is not None:
        save_visualizations(cfg, dataset, epoch, results, removed, out_dir, frames)
    print(table)
    print(f"Results in {out_dir}")
    return report


if __name__ == "__main__":
    main(config.parse_config(GROUPS, get_args_parser().parse_args()))
