"""Stage 3: pixel- and segment-level OoD detection metrics, plots, overlays and results files.

Without stage flags it runs -pixel -segment. It compares the baseline (epoch 0, when its cache exists),
the evaluated checkpoint (-epoch) and the evaluated checkpoint plus the meta classifier.
With --scores_from DIR it evaluates any method's score maps instead: the rows "external" and, after
`meta_classification.py --scores_from DIR -segment -removal`, "+ meta classifier".
"""
import dataclasses
import os

import config
from src import distributed, layout
from src.cache import cache_path
from src.checks import check_not_input, check_output_dir
from src.dataset import Cityscapes, build_valset, transforms as T
from src.errors import UserError, run_script
from src.evaluation.component_metrics import ComponentMetrics
from src.evaluation.frames import check_pixel_classes, named_frames, scored_frames
from src.evaluation.measure import measure
from src.evaluation.plots import save_curves, save_overlays
from src.evaluation.protocols import PROTOCOLS
from src.evaluation.report import (META_ROW, earlier_rows, file_measured, merge_rows, oodmc_table, protocol_entry,
                                   protocols_in, results_table, save_report)
from src.evaluation.score_maps import export_score_maps
from src.evaluation.segment_errors import count_segment_errors
from src.evaluation.sml_stats import measure_sml_stats
from src.external_maps import ExternalMaps
from src.identity import files_identity
from src.model import load_model
from src.oodmc.pipeline import evaluate_svm
from src.runtime import use_amp
from src.score_source import checked_scores
from src.segments import load_segments_and_removal

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "stages": config.EvalStages, "scores": config.ScoresFrom}
# nothing here draws at random, -moment reads the OODMC settings the SVM was trained with from its file, and the
# --scores_from segments carry the metric families they were searched with (segments.json)
LEAVE_OUT = ("seed", "metric_families")


def get_args_parser():
    return config.build_parser(__doc__, GROUPS, LEAVE_OUT)


def segments_of(cfg, source, epoch, with_meta):
    """(segments.json record, segment results, removed segments) of `source` (src/segments.py)."""
    return load_segments_and_removal(source, config.layout(cfg).source_segments_dir(epoch),
                                     lambda stage: config.source_command(cfg, epoch, stage), with_meta,
                                     bool(cfg.scores.scores_from), cfg.evalset.entropy_threshold)


def evaluate_source(cfg, source, epoch, name, row, with_meta=True):
    """The results rows of one score source: `name` ({**row, "identity", "segments", per protocol "pixel" and
    "component", "component_at_t"}) and, when the meta classifier has run, "+ meta classifier"; and its segments
    (segments.json record, segment results, removed segments), for the overlays and the report."""
    rows = {name: {**row, "identity": source.row_identity()}}
    with_segments = cfg.stages.segment_eval or with_meta
    record, results, removed = segments_of(cfg, source, epoch, with_meta) if with_segments else (None, None, None)
    reach = cfg.stages.removal_reach
    if results is not None:
        rows[name]["segments"] = dict(zip(("fp", "fn"), count_segment_errors(results)))
    if removed is not None:
        meta_file = layout.meta_classifier_file(config.layout(cfg).source_segments_dir(epoch))
        rows[META_ROW] = {**row, "segments": dict(zip(("fp", "fn"), count_segment_errors(results, removed))),
                          "removal_reach": reach, "identity": f"{rows[name]['identity']}, meta classifier "
                                                              f"{files_identity([meta_file])}, removal reach {reach}"}
    if cfg.stages.pixel_eval:
        threshold = cfg.evalset.entropy_threshold if record is None else record["threshold"]
        filtered = {} if removed is None else {META_ROW: source.meta_filter(results, removed, threshold, reach)}
        sizes = config.COMPONENT_SIZES[cfg.evalset.VALSET]
        at_t = {} if cfg.scores.scores_from and results is None else \
            {key: ComponentMetrics(threshold, *sizes) for key in [source.score_name, *filtered]}
        scores = source.measured_scores()
        measured = measure(source, scores, selected_protocols(cfg), *sizes, filtered, at_t, name)
        file_measured(rows, name, measured, scores, source.score_name,
                      "score" if cfg.scores.scores_from else "entropy+meta", at_t)
    return rows, (record, results, removed)


def selected_protocols(cfg):
    """The protocols --protocol asks for, in the order of the tables."""
    return list(PROTOCOLS) if cfg.stages.protocol == "all" else [cfg.stages.protocol]


def evaluate_oodmc(cfg, ctx, dataset, epoch):
    """-moment: the OODMC SVM on its held-out images beside the entropy (src/oodmc/pipeline.py), as oodmc.json."""
    out = config.layout(cfg)
    cache = checked_scores(out, dataset, epoch, config.stage_command(cfg, epoch, "-prepare"))
    report = evaluate_svm(lambda: load_model(cfg.model.MODEL, out.evaluated_checkpoint(epoch), ctx.device,
                                             config.NUM_CLASSES),
                          ctx, dataset, cache.paths, use_amp(cfg.run.amp, ctx.device), out.svm_file(epoch),
                          out.oodmc_scores_dir(epoch), config.stage_command(cfg, epoch, "-moment -SVM"))
    if report is None:
        return
    report["config"] = cfg.to_dict()
    table = oodmc_table(report)
    save_report(out.results_dir(epoch), layout.OODMC_REPORT, report,
                f"OODMC on {report['num_images']} images of {config.valset_name(cfg)}: {out.run_name(epoch)}", table)
    print(table)


def main(cfg):
    ctx = distributed.init_distributed(cfg.run.device)
    stages = cfg.stages
    if not any((stages.pixel_eval, stages.segment_eval, stages.moment, stages.sml_stats, stages.export_smiyc)):
        cfg = dataclasses.replace(cfg, stages=dataclasses.replace(stages, pixel_eval=True, segment_eval=True))
    dataset = build_valset(cfg.evalset.VALSET, config.valset_root(cfg), config.valset_split(cfg))
    epoch, out, name = cfg.evalset.val_epoch, config.layout(cfg), config.valset_name(cfg)
    external = bool(cfg.scores.scores_from)
    check_output_dir(out.results_dir(epoch), "--io_root")
    inputs = {"--scores_from": cfg.scores.scores_from, f"-val {cfg.evalset.VALSET}": config.valset_root(cfg)}
    check_not_input(cfg.paths.io_root, "--io_root", inputs)
    if cfg.stages.export_smiyc:
        check_output_dir(cfg.stages.export_smiyc, "--export_smiyc")
        check_not_input(cfg.stages.export_smiyc, "--export_smiyc", inputs)
    frames = named_frames(dataset, cfg.stages.visualize_frames, name)
    if external and (cfg.stages.moment or cfg.stages.sml_stats):
        raise UserError("-moment and --sml_stats run the checkpoint, --scores_from; run them without --scores_from")
    if cfg.stages.moment:
        evaluate_oodmc(cfg, ctx, dataset, epoch)  # the one stage that shares its images between processes
    distributed.cleanup()
    if not ctx.is_main:
        return None
    if cfg.stages.sml_stats:
        for e in sorted({0, epoch}):
            checkpoint = out.checkpoint(e)
            if e == epoch or os.path.isfile(checkpoint or ""):
                checkpoint = out.evaluated_checkpoint(e)
                measure_sml_stats(load_model(cfg.model.MODEL, checkpoint, ctx.device, config.NUM_CLASSES), checkpoint,
                                  Cityscapes(cfg.paths.cityscapes, "train", T.Compose([T.ToTensor(), T.Normalize()])),
                                  ctx.device, use_amp(cfg.run.amp, ctx.device), cfg.run.num_workers, config.NUM_CLASSES)
    evaluating = cfg.stages.pixel_eval or cfg.stages.segment_eval
    out_dir = out.source_results_dir(epoch)
    if evaluating:  # a damaged results file or a set the metrics cannot measure is named before any work
        earlier = earlier_rows(layout.results_file(out_dir))
        frames_scored = scored_frames(dataset, name)
        if cfg.stages.pixel_eval:
            check_pixel_classes(dataset, name, config.valset_root(cfg))
    if external:
        source = ExternalMaps(cfg.scores.scores_from, dataset)
        values = source.check_values() if cfg.stages.pixel_eval or cfg.stages.export_smiyc else None
        row = {"scores_from": os.path.realpath(cfg.scores.scores_from)}
    else:
        source = checked_scores(out, dataset, epoch, config.stage_command(cfg, epoch, "-prepare")) if evaluating or \
            cfg.stages.export_smiyc else None
        row, values = {"checkpoint": out.evaluated_checkpoint(epoch)}, None
    if cfg.stages.export_smiyc:
        meta_filter = None
        if external or cfg.stages.export_meta:
            record, results, removed = segments_of(cfg, source, epoch, with_meta=True)
            if removed is None:
                remedy = config.source_command(cfg, epoch, ("" if external else "-prepare ") + "-segment -removal")
                raise UserError(f"--export_smiyc {'with --scores_from' if external else '--export_meta'} writes the "
                                f"maps after the meta classifier, which has not run (or found no segment); run {remedy}")
            meta_filter = source.meta_filter(results, removed, record["threshold"], cfg.stages.removal_reach)
        export_score_maps(source, cfg.stages.export_smiyc, meta_filter, values)
    if not evaluating:
        return None

    rows = {}
    if external:
        evaluated, (record, results, removed) = evaluate_source(cfg, source, epoch, "external", row)
    else:
        if epoch != 0:
            if os.path.isfile(cache_path(out.cache_dir(0), 0)):
                baseline = checked_scores(out, dataset, 0, config.stage_command(cfg, 0, "-prepare"))
                rows.update(evaluate_source(cfg, baseline, 0, "baseline", {"checkpoint": baseline.checkpoint},
                                            with_meta=False)[0])
            else:
                print("No baseline row: its cache is missing; make it with "
                      f"{config.stage_command(cfg, 0, '-prepare -segment')}")
        run_row = "baseline" if epoch == 0 else f"{cfg.model.optim_target} training (epoch {epoch})"
        evaluated, (record, results, removed) = evaluate_source(cfg, source, epoch, run_row, row,
                                                                with_meta=cfg.stages.segment_eval)
    rows = merge_rows(earlier, {**rows, **evaluated})
    protocols = protocols_in(rows, PROTOCOLS) or selected_protocols(cfg)
    report = {"valset": name, "num_images": len(dataset), **frames_scored,
              **({"scores_from": row["scores_from"]} if external else {}), "protocol": cfg.stages.protocol,
              "protocols": protocols, "rows": rows, "config": cfg.to_dict()}
    if external and results is not None:
        report["families"] = record["families"]
    score, meta_score = ("score", "score") if external else ("entropy", "entropy+meta")
    table = results_table(rows, protocols, score=score, meta_score=meta_score)
    what = f"score maps of {row['scores_from']} at {out.scores_setting()}" if external else out.run_name(epoch)
    save_report(out_dir, layout.RESULTS, report, f"{name}: {what} (protocols: {', '.join(protocols)})", table)
    curves = {row_name: protocol_entry(r, protocols[0])["pixel"][meta_score if row_name == META_ROW else score]
              for row_name, r in rows.items() if "pixel" in protocol_entry(r, protocols[0])}
    if curves:
        save_curves(curves, os.path.join(out_dir, "roc.png"), os.path.join(out_dir, "pr.png"),
                    f"{name}, {os.path.basename(row['scores_from']) if external else 'normalised entropy'}")
    if not external and results is not None and removed is not None:
        save_overlays(source, results, removed, frames, cfg.stages.num_visualizations, cfg.evalset.entropy_threshold,
                      os.path.join(out_dir, "overlays"), f"{name}, frame {{}}: {out.run_name(epoch)}")
    print(table)
    print(f"Results in {out_dir}")
    return report


if __name__ == "__main__":
    # parsed inside run_script: a refused combination of flags is one line too
    run_script(lambda args: main(config.parse_config(GROUPS, args)), get_args_parser().parse_args())
