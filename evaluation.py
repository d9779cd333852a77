"""Stage 3: pixel- and segment-level OoD detection metrics, plots, overlays and results files.

Without stage flags it runs -pixel -segment. It compares the baseline (epoch 0, when its cache exists),
the evaluated checkpoint (-epoch) and the evaluated checkpoint plus the meta classifier.
With --scores_from DIR it evaluates any method's score maps instead: the rows "external" and, after
`meta_classification.py --scores_from DIR -segment -removal`, "+ meta classifier".
"""
import dataclasses
import hashlib
import json
import os

import numpy as np
from tqdm import tqdm

import config
from src import distributed, layout
from src.cache import cache_path, cached_images, checked_cache, checkpoint_identity, has_field, read_cache
from src.checks import check_not_input, check_output_dir, read_image
from src.dataset import Cityscapes, build_valset, transforms as T
from src.errors import UserError, run_script
from src.files import atomic_path, load_json, load_npy, load_npz, save_json
from src.identity import files_identity, label_identities, search_identity
from src.metaseg.segment_search import load_all_segments
from src.model import infer_dataset, load_model
from src.oodmc.moments import moment_features
from src.oodmc.svm import decision_map, hard_decision_counts, hard_decision_metrics, load_svm
from src.evaluation.over_cache import UNIT_SCORES, binary_labels, component_metrics, pixel_metrics
from src.evaluation.pixel_metrics import PixelMetrics
from src.evaluation.plots import frames_to_show, save_curves, save_overlay
from src.evaluation.protocols import PROTOCOLS, build_protocol
from src.evaluation.report import (earlier_rows, merge_rows, oodmc_table, protocol_entry, protocols_in,
                                   results_table, save_report, set_protocol_entry)
from src.runtime import use_amp
from src.evaluation.component_metrics import ComponentMetrics
from src.evaluation.score_maps import FLOAT16_MAX, score_map_path, write_score_map
from src.evaluation.scores import SCORES, ClassStats, meta_classified_score
from src.evaluation.segment_errors import count_segment_errors
from src.external_maps import (ExternalMaps, frame_train_ids, load_external_segments, meta_filtered_score, removed_mask,
                               score_label_pairs)

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "stages": config.EvalStages, "scores": config.ScoresFrom}
# nothing here draws at random, -moment reads the OODMC settings the SVM was trained with from its file, and the
# --scores_from segments carry the metric families they were searched with (segments.json)
LEAVE_OUT = ("seed", "metric_families")


def get_args_parser():
    return config.build_parser(__doc__, GROUPS, LEAVE_OUT)


def epoch_cache(cfg, dataset, epoch):
    """The inference cache files of checkpoint `epoch`, checked to be complete and made by it."""
    return checked_cache(config.layout(cfg).cache_dir(epoch), len(dataset),
                         checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch)),
                         config.stage_command(cfg, epoch, "-prepare"), label_identities(dataset), dataset.images)


def sml_stats_path(checkpoint):
    return os.path.splitext(checkpoint)[0] + "_sml.json"


def measure_sml_stats(cfg, ctx, epoch):
    """Class-wise mean and std of the max logit of checkpoint `epoch` on Cityscapes train, saved beside it."""
    checkpoint = config.layout(cfg).evaluated_checkpoint(epoch)
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
    stats = load_json(path, "delete it and measure again with `python evaluation.py --sml_stats` (the same flags)")
    if stats.pop("checkpoint", None) != checkpoint_identity(checkpoint):
        return None
    return ClassStats.from_dict(stats)


def entropy_meta_filter(cfg, cache_files, results, removed):
    """(image index, entropy) -> the entropy after the meta classifier, the "+ meta classifier" row's map. With
    --removal_reach 0 each removed pixel gets t x entropy (`meta_classified_score`, the paper row's rule); above
    0 the removal takes the connected pixels down to the reach as well (`meta_filtered_score`, entropy >= 0)."""
    threshold, reach = cfg.evalset.entropy_threshold, cfg.stages.removal_reach

    def meta_filter(i, entropy):
        if reach == 0:
            return meta_classified_score(entropy, removed_mask(results[i]["components"], removed[i]), threshold)
        void = read_cache(cache_files[i], ("gt_train",))["gt_train"] == 255  # as the segment search left it out
        return meta_filtered_score(entropy, results[i]["components"], removed[i], void, 0.0, threshold, reach)
    return meta_filter


def load_meta_classifier(cfg, epoch, results):
    """Per image, bool array of the segments the meta classifier removes (from meta_classification.py -removal)."""
    path = layout.meta_classifier_file(config.layout(cfg).segments_dir(epoch))
    if not os.path.isfile(path):
        raise UserError(f"{path} is missing; train the meta classifier with: "
                        f"{config.stage_command(cfg, epoch, '-removal')}")
    data = load_npz(path, f"train it again with: {config.stage_command(cfg, epoch, '-removal')}")
    removed, image = data["removed"], data["image"]
    if len(removed) != sum(len(r["metrics"]["iou0"]) for r in results):
        raise UserError(f"{path} does not match the segment results beside it; rerun: "
                        f"{config.stage_command(cfg, epoch, '-removal')}")
    return [removed[image == i] for i in range(len(results))]


def evaluate_checkpoint(cfg, dataset, epoch, with_meta):
    """Every metric of one checkpoint (and, with_meta, of it plus the meta classifier): a dict of rows."""
    checkpoint = config.layout(cfg).evaluated_checkpoint(epoch)
    cache_files = epoch_cache(cfg, dataset, epoch)
    name = "baseline" if epoch == 0 else f"{cfg.model.optim_target} training (epoch {epoch})"
    identity = search_identity(checkpoint_identity(checkpoint), label_identities(dataset), cached_images(cache_files))
    rows = {name: {"checkpoint": checkpoint, "identity": identity}}
    removed = results = None
    if cfg.stages.segment_eval or with_meta:
        results = load_all_segments(config.layout(cfg).segments_dir(epoch), len(dataset), identity,
                                    config.stage_command(cfg, epoch, "-segment"))
        fp, fn = count_segment_errors(results)
        rows[name]["segments"] = {"fp": fp, "fn": fn}
    if with_meta and not any(len(r["metrics"]["iou0"]) for r in results):
        print(f"No '+ meta classifier' row: no OoD segments were found at -threshold {cfg.evalset.entropy_threshold}, "
              "so there is nothing for it to remove")
        with_meta = False
    if with_meta:
        removed = load_meta_classifier(cfg, epoch, results)
        fp, fn = count_segment_errors(results, removed)
        meta_file = layout.meta_classifier_file(config.layout(cfg).segments_dir(epoch))
        rows["+ meta classifier"] = {"checkpoint": checkpoint, "segments": {"fp": fp, "fn": fn},
                                     "identity": f"{identity}, meta classifier {files_identity([meta_file])}, "
                                                 f"removal reach {cfg.stages.removal_reach}"}
    if cfg.stages.pixel_eval:
        stats = load_sml_stats(checkpoint)
        scores = [s for s in SCORES if s != "sml" or stats is not None]
        if stats is None:
            print(f"SML skipped for {checkpoint}: measure its statistics with `python evaluation.py --sml_stats "
                  f"-epoch {epoch} ...` (the same flags)")
        if not has_field(cache_files[0], "logsumexp"):
            scores.remove("energy")
            print(f"Energy skipped for {checkpoint}: its cache predates the cached logsumexp of the logits; "
                  f"rebuild it with {config.stage_command(cfg, epoch, '-prepare')}")
        meta_filter = entropy_meta_filter(cfg, cache_files, results, removed) if with_meta else None
        protocols = selected_protocols(cfg)
        unbinned = [s for s in scores if s not in UNIT_SCORES]
        if "meta-ood" in protocols and unbinned:
            print(f"meta-ood protocol: {', '.join(unbinned)} of {name} left out of it: it bins scores on [0, 1] "
                  "(the other protocols have them)")
        segsize, instsize = config.COMPONENT_SIZES[cfg.evalset.VALSET]
        metrics = pixel_metrics(cache_files, dataset.train_id_in, dataset.train_id_out, scores, protocols, segsize,
                                instsize, stats, meta_filter, desc=f"pixel metrics, {name}")
        for row, key, row_filter in ((name, "entropy", None), ("+ meta classifier", "entropy+meta", meta_filter)):
            if row_filter is None and key == "entropy+meta":
                continue
            at_t = ComponentMetrics(cfg.evalset.entropy_threshold, segsize, instsize)
            component_metrics(cache_files, dataset.train_id_in, dataset.train_id_out,
                              [metrics[p][key] for p in protocols], row_filter, [at_t],
                              desc=f"component metrics, {row}")
            rows[row]["component_at_t"] = at_t.compute()
            for p in protocols:
                computed = {s: m.compute() for s, m in metrics[p].items() if s == key or (row == name and s in scores)}
                set_protocol_entry(rows[row], p, computed, computed[key].pop("component", None))
    return rows, results, removed


def selected_protocols(cfg):
    """The protocols --protocol asks for, in the order of the tables."""
    return list(PROTOCOLS) if cfg.stages.protocol == "all" else [cfg.stages.protocol]


def export_smiyc(cfg, dataset, epoch, out_dir):
    """Each frame's anomaly score (normalised entropy; with --export_meta the "+ meta classifier" row's map) as
    SegmentMeIfYouCan submission files <frame>.hdf5."""
    cache_files = epoch_cache(cfg, dataset, epoch)
    meta_filter = None
    if cfg.stages.export_meta:
        identity = search_identity(checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch)), label_identities(dataset),
                                   cached_images(cache_files))
        results = load_all_segments(config.layout(cfg).segments_dir(epoch), len(dataset), identity,
                                    config.stage_command(cfg, epoch, "-segment"))
        meta_filter = entropy_meta_filter(cfg, cache_files, results, load_meta_classifier(cfg, epoch, results))
    for i, path in enumerate(tqdm(cache_files, desc="SMIYC export", unit="image")):
        score = read_cache(path, ("entropy",))["entropy"]
        write_score_map(score_map_path(out_dir, dataset.frame_name(i)), score if meta_filter is None else
                        meta_filter(i, score))
    print(f"--export_smiyc: {len(cache_files)} score maps" + (" after the meta classifier" if meta_filter else "") +
          f" -> {out_dir}")


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
    cache_dir = config.layout(cfg).cache_dir(epoch)
    for i in frames:
        cache = read_cache(cache_path(cache_dir, i), ("entropy", "gt_train"))
        save_overlay(np.asarray(read_image(dataset.images[i])),
                     binary_labels(cache["gt_train"], dataset.train_id_in, dataset.train_id_out),
                     cache["entropy"], results[i]["components"], np.asarray(results[i]["metrics"]["iou0"], bool),
                     removed[i], cfg.evalset.entropy_threshold,
                     os.path.join(out_dir, "overlays", f"{i:05d}_{dataset.frame_name(i)}.png"),
                     f"{config.valset_name(cfg)}, frame {dataset.frame_name(i)}: {config.layout(cfg).run_name(epoch)}")


def evaluate_oodmc(cfg, ctx, dataset, epoch):
    """-moment: the OODMC SVM's decision function on its evaluation images, beside the entropy of the same
    checkpoint on the same images. Score maps are saved per image, so an interrupted run continues."""
    path = config.layout(cfg).svm_file(epoch)
    try:
        classifier, settings = load_svm(path)
    except FileNotFoundError:
        raise UserError(f"-moment: no OODMC classifier at {path}; train it with "
                        f"{config.stage_command(cfg, epoch, '-moment -SVM')}")
    cache_files = epoch_cache(cfg, dataset, epoch)
    out_dir = os.path.join(config.layout(cfg).oodmc_dir(epoch), "scores")
    evaluated = settings["eval_images"]
    todo = [i for i in evaluated if not os.path.isfile(os.path.join(out_dir, f"{i:05d}.npy"))]
    mine = distributed.shard_listed(todo, ctx)
    if mine:
        model = load_model(cfg.model.MODEL, config.layout(cfg).evaluated_checkpoint(epoch), ctx.device, config.NUM_CLASSES)
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
        score = load_npy(os.path.join(out_dir, f"{i:05d}.npy"), "delete it and rerun the same command")
        svm.update(score[valid], label[valid] == 1)
        entropy.update(cache["entropy"][valid], label[valid] == 1)
        counts = counts + hard_decision_counts(score, label, 0, 1)
    report = {"num_images": len(evaluated), "svm": svm.compute(), "entropy": entropy.compute(),
              "hard_decision": hard_decision_metrics(counts), "settings": settings["moments"], "config": cfg.to_dict()}
    table = oodmc_table(report)
    save_report(config.layout(cfg).results_dir(epoch), layout.OODMC_REPORT, report,
                f"OODMC on {len(evaluated)} images of {config.valset_name(cfg)}: {config.layout(cfg).run_name(epoch)}", table)
    print(table)
    return report


def count_unlabelled(cfg, dataset):
    """The frames the metrics score and leave out, for the report: {num_scored, num_unlabelled (frames of the
    set not scored), left_out: {frame: why}}; prints them. UserError when no frame is scored, since then there is
    nothing to measure."""
    unlabelled = sum(not dataset.has_label(i) for i in range(len(dataset)))
    if unlabelled == len(dataset):
        raise UserError(f"none of the {len(dataset)} frames of {config.valset_name(cfg)} has labels, so there is "
                        "nothing to measure; --export_smiyc writes the submission files without them")
    scored = len(dataset) - unlabelled
    line = f"{config.valset_name(cfg)}: the metrics score {scored} frames"
    by_reason = {}
    for name, reason in sorted(dataset.left_out.items()):
        by_reason.setdefault(reason, []).append(name)
    if by_reason:
        line += "; left out: " + "; ".join(
            f"{len(names)} ({reason}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"
            for reason, names in by_reason.items())
    print(line)
    return {"num_scored": scored, "num_unlabelled": unlabelled, "left_out": dict(sorted(dataset.left_out.items()))}


def check_pixel_classes(cfg, dataset):
    """-pixel needs in-distribution and OoD pixels among the labels (AUROC, AP and FPR95 compare the two): checked on
    the label files before any metric is computed, else UserError naming the set."""
    counts = np.zeros(2, dtype=np.int64)
    for i in range(len(dataset)):
        gt_train = frame_train_ids(dataset, i)
        if gt_train is not None:
            counts += [(gt_train == dataset.train_id_in).sum(), (gt_train == dataset.train_id_out).sum()]
    if not counts.all():
        raise UserError(f"-pixel: the labels of {config.valset_name(cfg)} in {config.valset_root(cfg)} hold "
                        f"{counts[1]} OoD and {counts[0]} in-distribution pixels, and pixel metrics compare the two; "
                        "evaluate a set with both (or check its labels), or leave out -pixel")


def external_meta_classifier(cfg, maps):
    """(segment results, removed segments per frame, (lowest score of all maps, segment threshold)) of the
    --scores_from maps; each None when meta_classification.py has not searched them (or not run -removal) at
    this threshold."""
    out_dir = config.layout(cfg).external_segments_dir()
    if not os.path.isfile(layout.segments_record(out_dir)):
        print(f"No segment rows: the maps' segments are not searched; search them and train the meta classifier "
              f"with {config.external_command(cfg, '-segment -removal')}")
        return None, None, None
    record, results = load_external_segments(out_dir, maps, config.external_command(cfg, "-segment"))
    path = layout.meta_classifier_file(out_dir)
    if not os.path.isfile(path):
        print(f"No '+ meta classifier' row: train it with {config.external_command(cfg, '-removal')}")
        return results, None, None
    data = load_npz(path, f"train it again with {config.external_command(cfg, '-removal')}")
    removed, image = data["removed"], data["image"]
    if len(removed) != sum(len(r["metrics"]["iou0"]) for r in results):
        raise UserError(f"{path} does not match the segments beside it, --scores_from; train it again with "
                        f"{config.external_command(cfg, '-removal')}")
    low = min(float(r["score_min"]) for r in results)
    return results, [removed[image == i] for i in range(len(results))], (low, float(record["threshold"]))


def segment_threshold(cfg, maps):
    """The threshold t the --scores_from maps' segments were searched at (segments.json)."""
    return float(load_json(layout.segments_record(config.layout(cfg).external_segments_dir()),
                           f"search again with {config.external_command(cfg, '-segment')}")["threshold"])


def measure_pairs(pairs, protocols, segsize, instsize, stored_dtype=None, at_threshold=()):
    """{protocol: protocol.compute()} of the (score, label) pairs that each call `pairs()` yields, every protocol
    fed in the same two passes (the component threshold comes from the first), and the ComponentMetrics in
    `at_threshold` fed in the second. meta-ood bins [0, 1]: maps outside it leave it out, with a line saying so.
    stored_dtype: as build_protocol's."""
    accumulators = {name: build_protocol(name, segsize, instsize, stored_dtype) for name in protocols}
    for score, label in pairs():
        for name, accumulator in list(accumulators.items()):
            try:
                accumulator.update(score, label)
            except ValueError as error:
                if name != "meta-ood":
                    raise
                print(f"meta-ood protocol skipped: {error}")
                del accumulators[name]
    passes = [c for c in (a.components() for a in accumulators.values()) if c is not None] + list(at_threshold)
    if passes:
        for score, label in pairs():
            for components in passes:
                components.update(score, label)
    return {name: accumulator.compute() for name, accumulator in accumulators.items()}


def check_export_values(values, maps):
    """--export_smiyc writes float16, as the benchmark reads it: finite scores beyond its range would turn into
    inf, so they are refused, before the first file, with a factor that brings them into it."""
    largest = max(abs(values.low), abs(values.high))
    if largest > FLOAT16_MAX:
        factor = 10 ** int(np.ceil(np.log10(largest / FLOAT16_MAX)))
        raise UserError(f"--export_smiyc: the score maps in {maps.directory} reach {largest:.6g}, beyond "
                        f"{FLOAT16_MAX:g}, the largest value of the float16 submission files, where they would read "
                        f"inf; divide the maps by {factor} (the ranking stays the same), then search their segments "
                        "and train the meta classifier again at the scaled threshold")


def evaluate_external(cfg, dataset):
    """-pixel and -segment of the --scores_from maps, before and after the meta classifier; --export_smiyc
    writes the maps after it."""
    maps = ExternalMaps(cfg.scores.scores_from, dataset)
    out_dir = config.layout(cfg).external_results_dir()
    evaluating = cfg.stages.pixel_eval or cfg.stages.segment_eval
    earlier = earlier_rows(layout.results_file(out_dir)) if evaluating else {}  # named before any work
    results, removed, low_threshold = external_meta_classifier(cfg, maps)
    meta_filter = None if removed is None else (
        lambda i, score: meta_filtered_score(score, results[i]["components"], removed[i], maps.void(i), *low_threshold,
                                             cfg.stages.removal_reach))
    if cfg.stages.export_smiyc and removed is None:
        raise UserError(f"--export_smiyc with --scores_from writes the maps after the meta classifier, which has "
                        f"not run; run {config.external_command(cfg, '-segment -removal')}")
    if evaluating:
        frames_scored = count_unlabelled(cfg, dataset)
    if cfg.stages.pixel_eval:
        check_pixel_classes(cfg, dataset)
    if cfg.stages.export_smiyc or cfg.stages.pixel_eval:
        values = maps.check_values()
        if cfg.stages.export_smiyc:
            check_export_values(values, maps)
    if cfg.stages.export_smiyc:
        for i in tqdm(range(len(maps)), desc="SMIYC export", unit="frame"):
            write_score_map(score_map_path(cfg.stages.export_smiyc, dataset.frame_name(i)),
                            meta_filter(i, maps.score(i)))
        print(f"--export_smiyc: {len(maps)} score maps after the meta classifier -> {cfg.stages.export_smiyc}")
    if not evaluating:
        return None
    source = os.path.realpath(cfg.scores.scores_from)
    identity = f"score maps {hashlib.sha256(json.dumps(maps.identity()).encode()).hexdigest()[:16]}"
    rows = {"external": {"scores_from": source, "identity": identity}}
    if results is not None:
        fp, fn = count_segment_errors(results)
        rows["external"]["segments"] = {"fp": fp, "fn": fn}
    if removed is not None:
        fp, fn = count_segment_errors(results, removed)
        meta_file = layout.meta_classifier_file(config.layout(cfg).external_segments_dir())
        rows["+ meta classifier"] = {"scores_from": source, "segments": {"fp": fp, "fn": fn},
                                     "removal_reach": cfg.stages.removal_reach,
                                     "identity": f"{identity}, meta classifier {files_identity([meta_file])}, "
                                                 f"removal reach {cfg.stages.removal_reach}"}
    segsize, instsize = config.COMPONENT_SIZES[cfg.evalset.VALSET]
    for name, row_filter in (("external", None), ("+ meta classifier", meta_filter)):
        if name not in rows or not cfg.stages.pixel_eval:
            continue
        at_t = [] if results is None else [ComponentMetrics(segment_threshold(cfg, maps), segsize, instsize)]
        # smiyc reads the filtered maps as --export_smiyc stores them, in float16
        measured = measure_pairs(lambda: score_label_pairs(maps, row_filter), selected_protocols(cfg), segsize,
                                 instsize, None if row_filter is None else np.float16, at_t)
        if at_t:
            rows[name]["component_at_t"] = at_t[0].compute()
        for protocol, result in measured.items():
            set_protocol_entry(rows[name], protocol, {"score": result}, result.pop("component", None))
    rows = merge_rows(earlier, rows)
    protocols = protocols_in(rows, PROTOCOLS) or selected_protocols(cfg)
    report = {"valset": config.valset_name(cfg), "num_images": len(dataset), **frames_scored,
              "scores_from": source, "protocol": cfg.stages.protocol, "protocols": protocols, "rows": rows,
              "config": cfg.to_dict()}
    if results is not None:
        report["families"] = load_json(layout.segments_record(config.layout(cfg).external_segments_dir()),
                                       f"search again with {config.external_command(cfg, '-segment')}")["families"]
    table = results_table(rows, protocols, score="score", meta_score="score")
    save_report(out_dir, layout.RESULTS, report, f"{config.valset_name(cfg)}: score maps of {source} at "
                f"{config.layout(cfg).scores_setting()} (protocols: {', '.join(protocols)})", table)
    curves = {name: protocol_entry(row, protocols[0])["pixel"]["score"] for name, row in rows.items()
              if "pixel" in protocol_entry(row, protocols[0])}
    if curves:
        save_curves(curves, os.path.join(out_dir, "roc.png"), os.path.join(out_dir, "pr.png"),
                    f"{config.valset_name(cfg)}, {os.path.basename(source)}")
    print(table)
    print(f"Results in {out_dir}")
    return report


def main(cfg):
    ctx = distributed.init_distributed(cfg.run.device)
    stages = cfg.stages
    if not any((stages.pixel_eval, stages.segment_eval, stages.moment, stages.sml_stats, stages.export_smiyc)):
        cfg = dataclasses.replace(cfg, stages=dataclasses.replace(stages, pixel_eval=True, segment_eval=True))
    dataset = build_valset(cfg.evalset.VALSET, config.valset_root(cfg), config.valset_split(cfg))
    epoch = cfg.evalset.val_epoch
    check_output_dir(config.layout(cfg).results_dir(epoch), "--io_root")
    inputs = {"--scores_from": cfg.scores.scores_from, f"-val {cfg.evalset.VALSET}": config.valset_root(cfg)}
    check_not_input(cfg.paths.io_root, "--io_root", inputs)
    if cfg.stages.export_smiyc:
        check_output_dir(cfg.stages.export_smiyc, "--export_smiyc")
        check_not_input(cfg.stages.export_smiyc, "--export_smiyc", inputs)
    frames = named_frames(cfg, dataset)
    if cfg.scores.scores_from:
        if cfg.stages.moment or cfg.stages.sml_stats:
            raise UserError("-moment and --sml_stats run the checkpoint, --scores_from; run them without --scores_from")
        distributed.cleanup()
        return evaluate_external(cfg, dataset) if ctx.is_main else None
    if cfg.stages.moment:
        evaluate_oodmc(cfg, ctx, dataset, epoch)  # the one stage that shares its images between processes
    distributed.cleanup()
    if not ctx.is_main:
        return None
    if cfg.stages.sml_stats:
        for e in sorted({0, epoch}):
            if e == epoch or os.path.isfile(config.layout(cfg).checkpoint(e) or ""):
                measure_sml_stats(cfg, ctx, e)
    evaluating = cfg.stages.pixel_eval or cfg.stages.segment_eval
    out_dir = config.layout(cfg).threshold_results_dir(epoch)
    if evaluating:  # a damaged results file or a set the metrics cannot measure is named before any work
        frames_scored = count_unlabelled(cfg, dataset)
        earlier = earlier_rows(layout.results_file(out_dir))
        if cfg.stages.pixel_eval:
            check_pixel_classes(cfg, dataset)
    if cfg.stages.export_smiyc:
        export_smiyc(cfg, dataset, epoch, cfg.stages.export_smiyc)
    if not evaluating:
        return None

    rows = {}
    if epoch != 0:
        if os.path.isfile(cache_path(config.layout(cfg).cache_dir(0), 0)):
            rows.update(evaluate_checkpoint(cfg, dataset, 0, with_meta=False)[0])
        else:
            print(f"No baseline row: its cache is missing; make it with {config.stage_command(cfg, 0, '-prepare -segment')}")
    evaluated, results, removed = evaluate_checkpoint(cfg, dataset, epoch, with_meta=cfg.stages.segment_eval)
    rows.update(evaluated)

    rows = merge_rows(earlier, rows)
    protocols = protocols_in(rows, PROTOCOLS) or selected_protocols(cfg)
    report = {"valset": config.valset_name(cfg), "num_images": len(dataset), **frames_scored,
              "protocol": cfg.stages.protocol, "protocols": protocols, "rows": rows, "config": cfg.to_dict()}
    table = results_table(rows, protocols)
    save_report(out_dir, layout.RESULTS, report, f"{config.valset_name(cfg)}: {config.layout(cfg).run_name(epoch)} "
                f"(protocols: {', '.join(protocols)})", table)
    curves = {name: protocol_entry(row, protocols[0])["pixel"]["entropy+meta" if name == "+ meta classifier"
                                                                else "entropy"]
              for name, row in rows.items() if "pixel" in protocol_entry(row, protocols[0])}
    if curves:
        save_curves(curves, os.path.join(out_dir, "roc.png"), os.path.join(out_dir, "pr.png"),
                    f"{config.valset_name(cfg)}, normalised entropy")
    if results is not None and removed is not None:
        save_visualizations(cfg, dataset, epoch, results, removed, out_dir, frames)
    print(table)
    print(f"Results in {out_dir}")
    return report


if __name__ == "__main__":
    run_script(main, config.parse_config(GROUPS, get_args_parser().parse_args()))
