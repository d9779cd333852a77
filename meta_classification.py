"""Stage 2: cache the softmax on VALSET, search OoD segments, and remove false positives by meta classification.

Without stage flags it runs -prepare -segment -removal. Several processes share the images:
torchrun --nproc_per_node N meta_classification.py -prepare
With --scores_from DIR, -segment and -removal work on any method's score maps instead (one process).
"""
import collections
import contextlib
import dataclasses
import glob
import multiprocessing
import os
import shutil
import time

import numpy as np
import torch
from tqdm import tqdm

import config
from src import distributed, layout
from src.cache import (cache_arrays, cache_path, cached_images, checked_cache, checkpoint_identity, is_current,
                       read_cache, write_cache_arrays)
from src.checks import check_labels, check_not_input, check_output_dir
from src.dataset import build_valset
from src.errors import UserError, ignore_interrupt, run_script
from src.files import atomic_path, load_json, load_npz, save_json
from src.evaluation.score_maps import read_score_map
from src.evaluation.over_cache import binary_labels
from src.evaluation.segment_components import SegmentComponents, best_cut, image_table
from src.external_maps import ExternalMaps, frame_train_ids, load_external_segments, score_quantile, search_frame
from src.identity import image_identity, label_identities, search_identity
from src.meta_classifier import (SETTINGS, classifier_scores, cross_validated_decision, cross_validated_fp_probability,
                                 segments_to_dataset)
from src.metaseg.segment_search import (load_all_segments, save_segments, searched_checkpoint, segment_search,
                                       segments_path)
from src.model import infer_dataset, load_model
from src.oodmc.moments import moment_features
from src.oodmc.svm import draw_training_pixels, fit_svm, save_svm, split_images
from src.runtime import use_amp

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "meta": config.MetaStages, "oodmc": config.Oodmc, "scores": config.ScoresFrom}


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def epoch_model(cfg, ctx, epoch):
    return load_model(cfg.model.MODEL, config.layout(cfg).evaluated_checkpoint(epoch), ctx.device, config.NUM_CLASSES)


def epoch_cache(cfg, dataset, epoch):
    """The inference cache files of checkpoint `epoch`, checked to be complete and made by it."""
    return checked_cache(config.layout(cfg).cache_dir(epoch), len(dataset),
                         checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch)),
                         config.stage_command(cfg, epoch, "-prepare"), label_identities(dataset), dataset.images)


def prepare(cfg, ctx, dataset, epoch):
    """Run the checkpoint on every image not yet cached (this rank's share) and cache the results.

    With --num_workers, worker processes compress and write the files while the network runs on."""
    identity = checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch))
    labels = label_identities(dataset)
    cache_dir = config.layout(cfg).cache_dir(epoch)
    todo = [i for i in range(len(dataset))
            if not is_current(cache_path(cache_dir, i), identity, labels[i], dataset.images[i])]
    if ctx.is_main:
        print(f"-prepare: {len(dataset) - len(todo)} of {len(dataset)} images already cached in {cache_dir}")
    mine = distributed.shard_listed(todo, ctx)
    if mine:
        check_labels(dataset, mine)  # before the first forward pass
        model = epoch_model(cfg, ctx, epoch)
        amp = use_amp(cfg.run.amp, ctx.device)
        workers = cfg.run.num_workers
        # fork: the writers need h5py alone and must start before the data loader's workers
        with multiprocessing.get_context("fork").Pool(workers, ignore_interrupt) if workers else \
                contextlib.nullcontext() as writers:
            pending = collections.deque()
            try:
                for i, logits, target in infer_dataset(model, dataset, ctx.device, amp, mine, workers,
                                                       progress=ctx.is_main):
                    job = (cache_path(cache_dir, i), *cache_arrays(torch.softmax(logits, 0)),
                           logits.amax(0).cpu().numpy(), target.numpy().astype(np.uint8), dataset.label_ids(i),
                           {"image_path": dataset.images[i], "frame_name": dataset.frame_name(i),
                            "has_label": dataset.has_label(i), "checkpoint": identity, "labels": labels[i],
                            "model": cfg.model.MODEL, **image_identity(dataset.images[i])},
                           torch.logsumexp(logits, 0).cpu().numpy())
                    if writers is None:
                        write_cache_arrays(*job)
                        continue
                    pending.append(writers.apply_async(write_cache_arrays, job))
                    while len(pending) > 2 * workers:  # bounds the images held in memory
                        pending.popleft().get()
            finally:  # an error or Ctrl-C during inference still keeps the images already computed
                for result in pending:
                    result.wait()
            for result in pending:
                result.get()
    distributed.barrier(ctx)


def _search_one(job):
    cache_file, out_file, threshold, ood_index = job
    c = read_cache(cache_file, ("probs", "entropy", "gt_train", "gt_label"), float16_probs=True)
    save_segments(out_file, segment_search(c["probs"], c["gt_train"], c["gt_label"], threshold, ood_index,
                                           c["entropy"]))


def search_segments(cfg, ctx, dataset, epoch):
    """Segment search of every image without a results file (this rank's share), in worker processes."""
    cache_files = epoch_cache(cfg, dataset, epoch)
    identity = search_identity(checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch)), label_identities(dataset),
                               cached_images(cache_files))
    out_dir = config.layout(cfg).segments_dir(epoch)
    threshold = cfg.evalset.entropy_threshold
    if ctx.is_main and searched_checkpoint(out_dir) not in (None, identity):
        print(f"-segment: the results in {out_dir} come from another checkpoint's cache or other labels or images; "
              "searching again")
        shutil.rmtree(out_dir)
    distributed.barrier(ctx)
    jobs = [(cache_files[i], segments_path(out_dir, i), threshold, dataset.train_id_out)
            for i in range(len(dataset)) if not os.path.isfile(segments_path(out_dir, i))]
    if ctx.is_main:
        print(f"-segment: {len(dataset) - len(jobs)} of {len(dataset)} images already searched in {out_dir}")
        save_json({"checkpoint": identity, "entropy_threshold": threshold,
                   "num_images": len(dataset), "config": cfg.to_dict()}, layout.segments_record(out_dir))
    mine = distributed.shard_listed(jobs, ctx)
    run_jobs(_search_one, mine, cfg.run.num_workers, dict(desc="segment search", unit="image", disable=not ctx.is_main))
    distributed.barrier(ctx)


def run_jobs(function, jobs, workers, bar):
    """function(job) for every job, in `workers` processes (none: in this one), with a tqdm bar of settings `bar`."""
    if workers == 0:
        for job in tqdm(jobs, total=len(jobs), **bar):
            function(job)
        return
    # fork: the workers need numpy and the compiled metrics only, and spawning would re-import torch in each
    with multiprocessing.get_context("fork").Pool(workers, ignore_interrupt) as pool:
        for _ in tqdm(pool.imap_unordered(function, jobs), total=len(jobs), **bar):
            pass


def require_labels(cfg, dataset):
    if not any(dataset.has_label(i) for i in range(len(dataset))):
        raise UserError(f"-removal: none of the {len(dataset)} frames of {config.valset_name(cfg)} has labels, and "
                        "the meta classifier learns from them; run it on a labelled set")


def meta_classify(cfg, dataset, epoch):
    """Cross-validated meta classifier on the segments of `epoch`; saves which segments it removes."""
    require_labels(cfg, dataset)
    cache_files = epoch_cache(cfg, dataset, epoch)
    results = load_all_segments(config.layout(cfg).segments_dir(epoch), len(dataset),
                                search_identity(checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch)),
                                                label_identities(dataset), cached_images(cache_files)),
                                config.stage_command(cfg, epoch, "-segment"))
    remove_false_positives(cfg, dataset, results, config.layout(cfg).segments_dir(epoch))


def segment_components(cfg, dataset, results):
    """The component tables of the segments `results` of every frame (src/evaluation/segment_components.py), from
    the frames' labels: what the cut of a *_f1 meta classifier is chosen on."""
    segsize, instsize = config.COMPONENT_SIZES[cfg.evalset.VALSET]
    tables = []
    for i, result in enumerate(results):
        gt_train = frame_train_ids(dataset, i)
        label = (np.full(result["components"].shape, 255, np.uint8) if gt_train is None else
                 binary_labels(gt_train, dataset.train_id_in, dataset.train_id_out))
        tables.append(image_table(result["components"], label, segsize, instsize))
    return SegmentComponents(tables)


def remove_false_positives(cfg, dataset, results, out_dir, record=None):
    """Cross-validated meta classifier on the segment `results`; saves meta_classifier.npz / .json in `out_dir`
    (with the entries of `record`, e.g. the metric families) and prints its scores."""
    X, y, groups, names = segments_to_dataset([r["metrics"] for r in results])
    setting = cfg.meta.meta_classifier
    if cfg.meta.meta_cv == "loo" and setting != "paper":
        raise UserError(f"--meta_classifier {setting} needs --meta_cv kfold (its cut is chosen on folds grouped by "
                        "image); leave-one-segment-out is the paper's protocol, --meta_classifier paper")
    try:
        if cfg.meta.meta_cv == "loo":
            prob = cross_validated_fp_probability(X, y, groups, mode="loo")
            removed, cut = prob >= 0.5, np.full(len(y), 0.5)
        else:
            components = segment_components(cfg, dataset, results) if SETTINGS[setting][1] == "f1" else None
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
               "meta_cv": cfg.meta.meta_cv, "meta_classifier": setting,
               "cuts": [c if np.isfinite(c) else None for c in sorted(set(cut.tolist()))],  # None: removes none
               **(record or {}), "features": names, "config": cfg.to_dict()}
    save_json(summary, layout.meta_classifier_file(out_dir, "json"))
    print(f"-removal: meta classifier ({setting}, {cfg.meta.meta_cv}) on {len(y)} segments ({int(y.sum())} false "
          f"positives): AUROC {scores['auroc']:.4f}, AP {scores['ap']:.4f}, accuracy {scores['accuracy']:.4f}; "
          f"removes {int(removed.sum())} segments, {summary['removed_false_positives']} of them false positives")


def _spread(values, index, n):
    """(n,) float64 holding `values` at `index` and NaN elsewhere (the cut search only reads `index`)."""
    out = np.full(n, np.nan)
    out[index] = values
    return out


def _search_external_one(job):
    score_file, dataset, i, cache_file, out_file, threshold, ood_index = job
    score = read_score_map(score_file)
    gt_train = frame_train_ids(dataset, i)  # the dataset's own label rule (testNoKnown remaps the label ids)
    probs = None if cache_file is None else read_cache(cache_file, ("probs",), float16_probs=True)["probs"]
    result = search_frame(score, gt_train, threshold, ood_index, probs=probs)
    result["score_min"] = np.float32(score.min())  # the value removed segments get (see evaluation.py)
    save_segments(out_file, result)


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
    return epoch_cache(cfg, dataset, epoch)


def check_search_values(cfg, maps):
    """The maps' values fit a segment search at -threshold: finite segment metrics, and a threshold inside the
    scores' range; else UserError saying the range and what to pass. Returns the range as text."""
    values = maps.check_values()
    if values.posinf:
        raise UserError(f"--scores_from: {len(values.posinf)} of {len(maps)} score maps in {maps.directory} hold +inf "
                        f"({', '.join(values.posinf[:5])}), which makes the metrics of their segments infinite and the "
                        "meta classifier untrainable; write finite scores (e.g. +inf replaced by the largest finite "
                        "score of the maps)")
    if cfg.scores.score_quantile > 0:
        return values.describe()
    threshold, flag = cfg.evalset.entropy_threshold, f"-threshold {cfg.evalset.entropy_threshold}"
    hint = "pass a threshold inside the scores' range, or --score_quantile q (segments at the q quantile of the scores)"
    if values.is_integer() and values.high > 1:
        # -threshold lies in [0, 1]: on integer scores every such threshold keeps all pixels above 0, which
        # is a threshold meant for scores in [0, 1] applied to, e.g., 0..255
        raise UserError(f"{flag} on the integer score maps in {maps.directory} (scores {values.describe()}) keeps "
                        "every pixel above 0; pass --score_quantile q (segments at the q quantile of the scores), or "
                        f"write float scores in [0, 1] (e.g. value / {values.high:g})")
    if threshold > values.high:
        raise UserError(f"{flag} lies above every score of the maps in {maps.directory} ({values.describe()}), so "
                        f"no segment would be found; {hint}")
    if threshold <= values.low:
        raise UserError(f"{flag} lies at or below every score of the maps in {maps.directory} ({values.describe()}), "
                        f"so all pixels would be segments; {hint}")
    return values.describe()


def search_external_segments(cfg, dataset, maps, epoch):
    """Segments of every --scores_from map at -threshold (or --score_quantile), with their metrics, in workers."""
    scores_range = check_search_values(cfg, maps)
    cache_files = softmax_cache(cfg, dataset, epoch)
    families = ["score_map"] + (["softmax"] if cache_files else [])
    source = {"scores_from": maps.identity(), "families": families,
              "softmax_checkpoint": checkpoint_identity(config.layout(cfg).evaluated_checkpoint(epoch)) if cache_files else None,
              "softmax_images": cached_images(cache_files) if cache_files else None}
    out_dir = config.layout(cfg).external_segments_dir()
    if searched_checkpoint(out_dir) not in (None, source):
        print(f"-segment: the results in {out_dir} come from other score maps or metric families; searching again")
        shutil.rmtree(out_dir)
    quantile = cfg.scores.score_quantile
    threshold = score_quantile(maps, quantile) if quantile > 0 else cfg.evalset.entropy_threshold
    jobs = [(maps.paths[i], dataset, i, cache_files[i] if cache_files else None, segments_path(out_dir, i), threshold,
             dataset.train_id_out)
            for i in range(len(dataset)) if not os.path.isfile(segments_path(out_dir, i))]
    print(f"-segment: score >= {threshold:.6g}" + (f" (the {quantile} quantile)" if quantile > 0 else "") +
          f" (the maps' scores: {scores_range}), metric families {' + '.join(families)}; "
          f"{len(dataset) - len(jobs)} of {len(dataset)} frames already searched in {out_dir}")
    save_json({"checkpoint": source, "threshold": threshold, "score_quantile": quantile, "families": families,
               "num_images": len(dataset), "config": cfg.to_dict()}, layout.segments_record(out_dir))
    run_jobs(_search_external_one, jobs, cfg.run.num_workers, dict(desc="segment search", unit="frame"))


def external_stages(cfg, dataset, stages, epoch):
    """-segment and -removal on the score maps of --scores_from."""
    if stages.metaseg_prepare or stages.moment or stages.SVM:
        raise UserError("-prepare, -moment and -SVM run the checkpoint, --scores_from; run them without "
                        "--scores_from (-prepare then adds the softmax's metrics to the score maps' segments)")
    maps = ExternalMaps(cfg.scores.scores_from, dataset)
    if stages.segment_search:
        search_external_segments(cfg, dataset, maps, epoch)
    if stages.fp_removal:
        require_labels(cfg, dataset)
        out_dir = config.layout(cfg).external_segments_dir()
        record, results = load_external_segments(out_dir, maps, config.external_command(cfg, "-segment"))
        remove_false_positives(cfg, dataset, results, out_dir, {"families": record["families"],
                                                       "threshold": record["threshold"]})


def same_json(path, obj):
    """Whether the JSON file `path` exists and holds `obj`."""
    if not os.path.isfile(path):
        return False
    return load_json(path, "delete it and rerun the same command") == obj


class CachedLabels:
    """The train-id ground truth of cache files, read on demand (a lazy sequence of (H, W) uint8)."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return read_cache(self.paths[i], ("gt_train",))["gt_train"]


def moment_settings(cfg):
    """The OODMC feature settings, saved with the SVM so that evaluation computes the same features."""
    o = cfg.oodmc
    return {"num_samples": o.moment_num, "batch_size": o.max_batch_size_for_moment, "order": o.moment_order,
            "weight": o.moment_weight, "source": o.moment_source}


def oodmc_training_features(cfg, ctx, dataset, epoch):
    """-moment: MC-dropout moment features of `svm_points_num` balanced training pixels, one file per image."""
    cache_files = epoch_cache(cfg, dataset, epoch)
    try:
        train, _ = split_images(len(dataset), cfg.oodmc.SVM_eval_subsize, cfg.run.seed)
        pixels = draw_training_pixels(CachedLabels([cache_files[i] for i in train]), dataset.train_id_in,
                                      dataset.train_id_out, cfg.oodmc.svm_points_num, cfg.run.seed)
    except ValueError as error:
        raise UserError(f"-moment: {error}")
    out_dir = os.path.join(config.layout(cfg).oodmc_dir(epoch), "train")
    made_with = {**moment_settings(cfg), "seed": cfg.run.seed, "svm_points_num": cfg.oodmc.svm_points_num,
                 "SVM_eval_subsize": cfg.oodmc.SVM_eval_subsize}
    if ctx.is_main and not same_json(os.path.join(out_dir, "settings.json"), made_with):
        shutil.rmtree(out_dir, ignore_errors=True)  # features of other settings or pixels: start again
        save_json(made_with, os.path.join(out_dir, "settings.json"))
    distributed.barrier(ctx)
    todo = [(i, p) for i, p in zip(train, pixels) if len(p) and not os.path.isfile(os.path.join(out_dir, f"{i:05d}.npz"))]
    if ctx.is_main:
        print(f"-moment: {cfg.oodmc.svm_points_num} training pixels from {len(train)} images; "
              f"{len(todo)} images to sample ({cfg.oodmc.moment_num} MC-dropout passes each)")
    mine = distributed.shard_listed(todo, ctx)
    if mine:
        model = epoch_model(cfg, ctx, epoch)
        for i, index in tqdm(mine, desc="OODMC training features", unit="image", disable=not ctx.is_main):
            image, target = dataset[i]
            try:
                features = moment_features(model, image.to(ctx.device), **moment_settings(cfg), seed=cfg.run.seed + i,
                                           pixels=index, amp=use_amp(cfg.run.amp, ctx.device))
            except ValueError as error:
                raise UserError(f"-moment: {error}")
            with atomic_path(os.path.join(out_dir, f"{i:05d}.npz")) as tmp, open(tmp, "wb") as f:
                np.savez(f, features=features.T.cpu().numpy(), is_ood=target.numpy().reshape(-1)[index] ==
                         dataset.train_id_out)
    distributed.barrier(ctx)


def train_oodmc_svm(cfg, dataset, epoch):
    """-SVM: the standardised linear SVM on the training features of -moment."""
    train, evaluated = split_images(len(dataset), cfg.oodmc.SVM_eval_subsize, cfg.run.seed)
    out_dir = os.path.join(config.layout(cfg).oodmc_dir(epoch), "train")
    files = sorted(glob.glob(os.path.join(out_dir, "*.npz")))
    if not files:
        raise UserError(f"-SVM: no training features in {out_dir}; compute them with "
                        f"{config.stage_command(cfg, epoch, '-moment')}")
    data = [load_npz(f, f"delete it and compute it again with {config.stage_command(cfg, epoch, '-moment')}")
            for f in files]
    features = np.concatenate([d["features"] for d in data])
    is_ood = np.concatenate([d["is_ood"] for d in data])
    classifier = fit_svm(features, is_ood, cfg.run.seed)
    path = config.layout(cfg).svm_file(epoch)
    shutil.rmtree(os.path.join(config.layout(cfg).oodmc_dir(epoch), "scores"), ignore_errors=True)  # made by the old SVM
    save_svm(classifier, {"moments": moment_settings(cfg), "seed": cfg.run.seed, "eval_images": evaluated,
                          "train_images": train, "num_pixels": int(len(is_ood)), "config": cfg.to_dict()}, path)
    accuracy = float((classifier.predict(features) == is_ood).mean())
    print(f"-SVM: linear SVM on {len(is_ood)} pixels ({int(is_ood.sum())} OoD) from {len(files)} images, "
          f"training accuracy {accuracy:.4f}; saved {path}")


def main(cfg):
    ctx = distributed.init_distributed(cfg.run.device)
    stages = cfg.meta
    if not any((stages.metaseg_prepare, stages.segment_search, stages.fp_removal, stages.moment, stages.SVM)):
        stages = dataclasses.replace(stages, metaseg_prepare=not cfg.scores.scores_from, segment_search=True,
                                     fp_removal=True)
    dataset = build_valset(cfg.evalset.VALSET, config.valset_root(cfg), config.valset_split(cfg))
    epoch = cfg.evalset.val_epoch
    check_output_dir(config.layout(cfg).run_dir(epoch), "--io_root")
    check_not_input(cfg.paths.io_root, "--io_root", {"--scores_from": cfg.scores.scores_from,
                                                     f"-val {cfg.evalset.VALSET}": config.valset_root(cfg)})
    if stages.moment or stages.SVM:
        try:
            split_images(len(dataset), cfg.oodmc.SVM_eval_subsize, cfg.run.seed)
        except ValueError as error:
            raise UserError(f"{'-moment' if stages.moment else '-SVM'}: {error}")
    started = time.time()
    if cfg.scores.scores_from:
        if ctx.world_size > 1:
            raise UserError("--scores_from runs in one process; start it with python, not torchrun")
        external_stages(cfg, dataset, stages, epoch)
        print(f"meta_classification.py finished in {time.time() - started:.0f}s; outputs in "
              f"{os.path.dirname(config.layout(cfg).external_segments_dir())}")
        distributed.cleanup()
        return
    if stages.metaseg_prepare:
        prepare(cfg, ctx, dataset, epoch)
    if stages.segment_search:
        search_segments(cfg, ctx, dataset, epoch)
    if stages.fp_removal and ctx.is_main:
        meta_classify(cfg, dataset, epoch)
    if stages.moment:
        oodmc_training_features(cfg, ctx, dataset, epoch)
    if stages.SVM and ctx.is_main:
        train_oodmc_svm(cfg, dataset, epoch)
    if ctx.is_main:
        print(f"meta_classification.py finished in {time.time() - started:.0f}s; outputs in {config.layout(cfg).run_dir(epoch)}")
    distributed.cleanup()


if __name__ == "__main__":
    run_script(main, config.parse_config(GROUPS, get_args_parser().parse_args()))
