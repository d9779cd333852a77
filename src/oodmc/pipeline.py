"""OODMC from a checkpoint's inference cache: MC-dropout moment features of balanced training pixels (-moment),
the linear SVM on them (-SVM), and its decision function on the held-out images beside the entropy
(evaluation.py -moment). Every file goes under the checkpoint's oodmc folder (src/layout.py); features and
score maps are saved per image, so an interrupted run continues."""
import glob
import os
import shutil

import numpy as np
from tqdm import tqdm

from src import distributed
from src.cache import read_cache
from src.errors import UserError
from src.evaluation.measure import binary_labels
from src.evaluation.pixel_metrics import PixelMetrics
from src.files import atomic_path, load_npy, load_npz, same_json, save_json
from src.oodmc.moments import moment_features
from src.oodmc.svm import (decision_map, draw_training_pixels, fit_svm, hard_decision_counts, hard_decision_metrics,
                           load_svm, save_svm, split_images)


class CachedLabels:
    """The train-id ground truth of cache files, read on demand (a lazy sequence of (H, W) uint8)."""

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return read_cache(self.paths[i], ("gt_train",))["gt_train"]


def training_features(load_model, ctx, dataset, cache_files, moments, num_pixels, eval_size, seed, amp, out_dir):
    """-moment: the moment features (settings `moments`, see src/oodmc/moments.py) of `num_pixels` balanced
    training pixels of the images outside the `eval_size` held-out ones, one file per image in `out_dir`;
    features of other settings there are deleted first. load_model: () -> the network."""
    try:
        train, _ = split_images(len(dataset), eval_size, seed)
        pixels = draw_training_pixels(CachedLabels([cache_files[i] for i in train]), dataset.train_id_in,
                                      dataset.train_id_out, num_pixels, seed)
    except ValueError as error:
        raise UserError(f"-moment: {error}")
    made_with = {**moments, "seed": seed, "svm_points_num": num_pixels, "SVM_eval_subsize": eval_size}
    settings_file = os.path.join(out_dir, "settings.json")
    if ctx.is_main and not same_json(settings_file, made_with, "delete it and rerun the same command"):
        shutil.rmtree(out_dir, ignore_errors=True)  # features of other settings or pixels: start again
        save_json(made_with, settings_file)
    distributed.barrier(ctx)
    todo = [(i, p) for i, p in zip(train, pixels) if len(p) and not os.path.isfile(os.path.join(out_dir, f"{i:05d}.npz"))]
    if ctx.is_main:
        print(f"-moment: {num_pixels} training pixels from {len(train)} images; "
              f"{len(todo)} images to sample ({moments['num_samples']} MC-dropout passes each)")
    mine = distributed.shard_listed(todo, ctx)
    if mine:
        model = load_model()
        for i, index in tqdm(mine, desc="OODMC training features", unit="image", disable=not ctx.is_main):
            image, target = dataset[i]
            try:
                features = moment_features(model, image.to(ctx.device), **moments, seed=seed + i,
                                           pixels=index, amp=amp)
            except ValueError as error:
                raise UserError(f"-moment: {error}")
            with atomic_path(os.path.join(out_dir, f"{i:05d}.npz")) as tmp, open(tmp, "wb") as f:
                np.savez(f, features=features.T.cpu().numpy(), is_ood=target.numpy().reshape(-1)[index] ==
                         dataset.train_id_out)
    distributed.barrier(ctx)


def train_svm(num_images, moments, eval_size, seed, features_dir, svm_file, scores_dir, features_hint, config_dict):
    """-SVM: the standardised linear SVM on the training features in `features_dir`, saved to `svm_file` with the
    feature settings `moments` and the `eval_size` held-out images it is evaluated on; the score maps of an
    earlier SVM go."""
    train, evaluated = split_images(num_images, eval_size, seed)
    files = sorted(glob.glob(os.path.join(features_dir, "*.npz")))
    if not files:
        raise UserError(f"-SVM: no training features in {features_dir}; compute them with {features_hint}")
    data = [load_npz(f, f"delete it and compute it again with {features_hint}") for f in files]
    features = np.concatenate([d["features"] for d in data])
    is_ood = np.concatenate([d["is_ood"] for d in data])
    classifier = fit_svm(features, is_ood, seed)
    shutil.rmtree(scores_dir, ignore_errors=True)  # made by the old SVM
    save_svm(classifier, {"moments": moments, "seed": seed, "eval_images": evaluated,
                          "train_images": train, "num_pixels": int(len(is_ood)), "config": config_dict}, svm_file)
    accuracy = float((classifier.predict(features) == is_ood).mean())
    print(f"-SVM: linear SVM on {len(is_ood)} pixels ({int(is_ood.sum())} OoD) from {len(files)} images, "
          f"training accuracy {accuracy:.4f}; saved {svm_file}")


def evaluate_svm(load_model, ctx, dataset, cache_files, amp, svm_file, scores_dir, train_hint):
    """evaluation.py -moment: the SVM's decision function on its held-out images (score maps in `scores_dir`),
    beside the entropy of the same checkpoint on the same images. Returns the report (None on other ranks)."""
    try:
        classifier, settings = load_svm(svm_file)
    except FileNotFoundError:
        raise UserError(f"-moment: no OODMC classifier at {svm_file}; train it with {train_hint}")
    evaluated = settings["eval_images"]
    todo = [i for i in evaluated if not os.path.isfile(os.path.join(scores_dir, f"{i:05d}.npy"))]
    mine = distributed.shard_listed(todo, ctx)
    if mine:
        model = load_model()
        for i in tqdm(mine, desc="OODMC evaluation", unit="image", disable=not ctx.is_main):
            features = moment_features(model, dataset[i][0].to(ctx.device), **settings["moments"],
                                       seed=settings["seed"] + i, amp=amp)
            with atomic_path(os.path.join(scores_dir, f"{i:05d}.npy")) as tmp, open(tmp, "wb") as f:
                np.save(f, decision_map(classifier, features))
    distributed.barrier(ctx)
    if not ctx.is_main:
        return None
    svm, entropy, counts = PixelMetrics(), PixelMetrics(), 0
    for i in evaluated:
        cache = read_cache(cache_files[i], ("entropy", "gt_train"))
        label = binary_labels(cache["gt_train"], dataset.train_id_in, dataset.train_id_out)
        valid = label != 255
        score = load_npy(os.path.join(scores_dir, f"{i:05d}.npy"), "delete it and rerun the same command")
        svm.update(score[valid], label[valid] == 1)
        entropy.update(cache["entropy"][valid], label[valid] == 1)
        counts = counts + hard_decision_counts(score, label, 0, 1)
    return {"num_images": len(evaluated), "svm": svm.compute(), "entropy": entropy.compute(),
            "hard_decision": hard_decision_metrics(counts), "settings": settings["moments"]}
