"""Stage 2: cache the softmax on VALSET, search OoD segments, and remove false positives by meta classification.

Without stage flags it runs -prepare -segment -removal. Several processes share the images:
torchrun --nproc_per_node N meta_classification.py -prepare
With --scores_from DIR, -segment and -removal work on any method's score maps instead (one process).
"""
import dataclasses
import os
import time

import config
from src import distributed
from src.cache import cache_path, cached_images, checkpoint_identity, is_current, write_outputs
from src.checks import check_labels, check_not_input, check_output_dir
from src.dataset import build_valset
from src.errors import UserError, run_script
from src.external_maps import ExternalMaps, check_search_values, score_quantile
from src.identity import label_identities
from src.model import infer_dataset, load_model
from src.oodmc import pipeline as oodmc
from src.oodmc.svm import split_images
from src.runtime import use_amp
from src.score_source import checked_scores
from src.segments import remove_false_positives, require_labels, search_segments

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "meta": config.MetaStages, "oodmc": config.Oodmc, "scores": config.ScoresFrom}


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def prepare(cfg, ctx, dataset, epoch):
    """Run the checkpoint on every image not yet cached (this rank's share) and cache its softmax and scores."""
    checkpoint = config.layout(cfg).evaluated_checkpoint(epoch)
    identity, labels = checkpoint_identity(checkpoint), label_identities(dataset)
    cache_dir = config.layout(cfg).cache_dir(epoch)
    todo = [i for i in range(len(dataset))
            if not is_current(cache_path(cache_dir, i), identity, labels[i], dataset.images[i])]
    if ctx.is_main:
        print(f"-prepare: {len(dataset) - len(todo)} of {len(dataset)} images already cached in {cache_dir}")
    mine = distributed.shard_listed(todo, ctx)
    if mine:
        check_labels(dataset, mine)  # before the first forward pass
        model = load_model(cfg.model.MODEL, checkpoint, ctx.device, config.NUM_CLASSES)
        outputs = infer_dataset(model, dataset, ctx.device, use_amp(cfg.run.amp, ctx.device), mine,
                                cfg.run.num_workers, progress=ctx.is_main)
        write_outputs(outputs, dataset, cache_dir,
                      lambda i: {"checkpoint": identity, "labels": labels[i], "model": cfg.model.MODEL},
                      cfg.run.num_workers)
    distributed.barrier(ctx)


def moment_settings(cfg):
    """The OODMC feature settings, saved with the SVM so that evaluation computes the same features."""
    o = cfg.oodmc
    return {"num_samples": o.moment_num, "batch_size": o.max_batch_size_for_moment, "order": o.moment_order,
            "weight": o.moment_weight, "source": o.moment_source}


def softmax_cache(cfg, dataset, epoch):
    """The evaluated checkpoint's cache files when --metric_families takes the softmax family, else None."""
    families = cfg.scores.metric_families
    cache_dir = config.layout(cfg).cache_dir(epoch)
    if families == "score_map":
        return None
    if families == "auto" and not os.path.isfile(cache_path(cache_dir, 0)):
        print(f"-segment: no inference cache in {cache_dir}, so the segments get the metrics of the score map alone "
              f"(make it with {config.stage_command(cfg, epoch, '-prepare')} to add the softmax's MetaSeg metrics)")
        return None
    return checked_scores(config.layout(cfg), dataset, epoch, config.stage_command(cfg, epoch, "-prepare")).paths


def external_source(cfg, dataset, epoch):
    """(--scores_from maps as a score source, segments.json record, threshold, what to print after it)."""
    maps = ExternalMaps(cfg.scores.scores_from, dataset, softmax_cache(cfg, dataset, epoch))
    scores_range = check_search_values(maps, cfg.scores.score_threshold, cfg.scores.score_quantile)
    families = ["score_map"] + (["softmax"] if maps.softmax_cache else [])
    checkpoint = config.layout(cfg).evaluated_checkpoint(epoch) if maps.softmax_cache else None
    made_from = {"scores_from": maps.identity(), "families": families,
                 "softmax_checkpoint": checkpoint and checkpoint_identity(checkpoint),
                 "softmax_images": checkpoint and cached_images(maps.softmax_cache)}
    quantile = cfg.scores.score_quantile
    threshold = score_quantile(maps, quantile) if quantile > 0 else cfg.scores.score_threshold
    note = (f" (the {quantile} quantile)" if quantile > 0 else "") + \
        f" (the maps' scores: {scores_range}), metric families {' + '.join(families)}"
    return maps, {"checkpoint": made_from, "score_quantile": quantile, "families": families}, threshold, note


def main(cfg):
    ctx = distributed.init_distributed(cfg.run.device)
    stages = cfg.meta
    if not any((stages.metaseg_prepare, stages.segment_search, stages.fp_removal, stages.moment, stages.SVM)):
        stages = dataclasses.replace(stages, metaseg_prepare=not cfg.scores.scores_from, segment_search=True,
                                     fp_removal=True)
    dataset = build_valset(cfg.evalset.VALSET, config.valset_root(cfg), config.valset_split(cfg))
    epoch, out = cfg.evalset.val_epoch, config.layout(cfg)
    check_output_dir(out.run_dir(epoch), "--io_root")
    check_not_input(cfg.paths.io_root, "--io_root", {"--scores_from": cfg.scores.scores_from,
                                                     f"-val {cfg.evalset.VALSET}": config.valset_root(cfg)})
    external = bool(cfg.scores.scores_from)
    if external and (stages.metaseg_prepare or stages.moment or stages.SVM):
        raise UserError("-prepare, -moment and -SVM run the checkpoint, --scores_from; run them without "
                        "--scores_from (-prepare then adds the softmax's metrics to the score maps' segments)")
    if external and ctx.world_size > 1:
        raise UserError("--scores_from runs in one process; start it with python, not torchrun")
    if stages.moment or stages.SVM:
        try:
            split_images(len(dataset), cfg.oodmc.SVM_eval_subsize, cfg.run.seed)
        except ValueError as error:
            raise UserError(f"{'-moment' if stages.moment else '-SVM'}: {error}")
    segments_dir = out.source_segments_dir(epoch)
    started = time.time()
    if stages.metaseg_prepare:
        prepare(cfg, ctx, dataset, epoch)
    cache = None if external or not (stages.segment_search or stages.fp_removal or stages.moment) else \
        checked_scores(out, dataset, epoch, config.stage_command(cfg, epoch, "-prepare"))
    if stages.segment_search:
        if external:
            source, record, threshold, note = external_source(cfg, dataset, epoch)
        else:
            source, record, threshold, note = cache, {"checkpoint": cache.identity()}, cfg.evalset.entropy_threshold, ""
        search_segments(source, segments_dir, threshold, {**record, "config": cfg.to_dict()}, cfg.run.num_workers,
                        ctx, note)
    if stages.fp_removal and ctx.is_main:
        require_labels(dataset, config.valset_name(cfg))
        source = ExternalMaps(cfg.scores.scores_from, dataset) if external else cache
        record, results = source.searched(segments_dir, config.source_command(cfg, epoch, "-segment"))
        kept = {key: record[key] for key in ("families", "threshold") if key in record}
        remove_false_positives(dataset, results, segments_dir, cfg.meta.meta_classifier, cfg.meta.meta_cv,
                               config.COMPONENT_SIZES[cfg.evalset.VALSET], {**kept, "config": cfg.to_dict()})
    def load():
        return load_model(cfg.model.MODEL, out.evaluated_checkpoint(epoch), ctx.device, config.NUM_CLASSES)

    if stages.moment:
        oodmc.training_features(load, ctx, dataset, cache.paths, moment_settings(cfg),
                                cfg.oodmc.svm_points_num, cfg.oodmc.SVM_eval_subsize, cfg.run.seed,
                                use_amp(cfg.run.amp, ctx.device), out.oodmc_features_dir(epoch))
    if stages.SVM and ctx.is_main:
        oodmc.train_svm(len(dataset), moment_settings(cfg), cfg.oodmc.SVM_eval_subsize, cfg.run.seed,
                        out.oodmc_features_dir(epoch), out.svm_file(epoch), out.oodmc_scores_dir(epoch),
                        config.stage_command(cfg, epoch, "-moment"), cfg.to_dict())
    if ctx.is_main:
        print(f"meta_classification.py finished in {time.time() - started:.0f}s; outputs in "
              f"{os.path.dirname(segments_dir) if external else out.run_dir(epoch)}")
    distributed.cleanup()


if __name__ == "__main__":
    # parsed inside run_script: a refused combination of flags is one line too
    run_script(lambda args: main(config.parse_config(GROUPS, args)), get_args_parser().parse_args())
