"""The OODMC meta classifier: a standardised linear SVM on the moment features of single pixels.

Labels use the evaluation encoding: one id for in-distribution pixels, one for OoD pixels (OoD is the
positive class); every other value (void, ignored) takes no part.
"""
import dataclasses
import json
import os

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from src.errors import UserError
from src.files import atomic_path, load_npz

# v2: plain arrays in an npz (v1 was a pickle, which runs code when read)
FILE_FORMAT = "meta-ood oodmc svm v2"


@dataclasses.dataclass(frozen=True)
class LinearSvm:
    """What the decision function of fit_svm's Pipeline needs: (x - mean) / scale . coef + intercept.

    mean, scale, coef: (F,) float64; intercept: float. Higher = more OoD.
    """
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_pipeline(cls, classifier):
        scaler, svm = classifier.named_steps["scaler"], classifier.named_steps["svm"]
        if list(svm.classes_) != [0, 1]:
            raise ValueError(f"the SVM's classes are {list(svm.classes_)}; expected [0, 1] (1 = OoD) as fit_svm makes")
        return cls(np.asarray(scaler.mean_, np.float64), np.asarray(scaler.scale_, np.float64),
                   np.asarray(svm.coef_[0], np.float64), float(svm.intercept_[0]))


def draw_training_pixels(labels, in_id, ood_id, num_pixels, seed):
    """Draw `num_pixels` training pixels from a set of images: half in-distribution, half OoD.

    labels: sequence of (H, W) integer arrays (read twice: a lazy sequence works). Within each class
    the pixels are drawn uniformly from all pixels of that class in the whole set, without
    replacement; pixels of any other label are never drawn. num_pixels // 2 are OoD, the rest
    in-distribution. Returns one sorted int64 array of flat pixel indices (into H * W) per image;
    the targets are `labels[i].reshape(-1)[index] == ood_id`.
    """
    num_ood = num_pixels // 2
    num_in = num_pixels - num_ood
    counts = np.array([[np.count_nonzero(label == in_id), np.count_nonzero(label == ood_id)] for label in labels],
                      dtype=np.int64).reshape(-1, 2)
    total_in, total_ood = counts.sum(0)
    if total_in < num_in or total_ood < num_ood:
        raise ValueError(f"the {len(counts)} training images hold {total_in} in-distribution pixels (label {in_id}) "
                         f"and {total_ood} OoD pixels (label {ood_id}), but {num_pixels} training pixels need "
                         f"{num_in} and {num_ood}: lower svm_points_num or train on more images")
    rng = np.random.default_rng(seed)
    # ranks into the concatenation of each class's pixels over all images, split per image below
    ranks = [np.sort(rng.choice(total_in, num_in, replace=False)),
             np.sort(rng.choice(total_ood, num_ood, replace=False))]
    ends = counts.cumsum(0)
    pixels = []
    for i, label in enumerate(labels):
        flat = np.asarray(label).reshape(-1)
        chosen = []
        for column, class_id in enumerate((in_id, ood_id)):
            end = ends[i, column]
            start = end - counts[i, column]
            mine = ranks[column][np.searchsorted(ranks[column], start):np.searchsorted(ranks[column], end)]
            if len(mine):
                chosen.append(np.flatnonzero(flat == class_id)[mine - start])
        pixels.append(np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64))
    return pixels


def fit_svm(features, is_ood, seed, C=1.0):
    """Fit StandardScaler + LinearSVC on pixel features.

    features: (n, F) float32; is_ood: (n,) bool, True for OoD pixels. Returns the fitted sklearn
    Pipeline (steps "scaler", "svm") whose decision function is higher for OoD.
    """
    features = np.asarray(features)
    is_ood = np.asarray(is_ood, dtype=bool)
    if features.ndim != 2 or is_ood.shape != (len(features),):
        raise ValueError(f"features must be (n, F) and is_ood (n,); got {features.shape} and {is_ood.shape}")
    if is_ood.all() or not is_ood.any():
        raise ValueError("the training pixels must include both in-distribution and OoD pixels")
    classifier = Pipeline([("scaler", StandardScaler()),
                           ("svm", LinearSVC(C=C, dual=False, random_state=seed))])
    return classifier.fit(features, is_ood.astype(np.int64))


def decision_map(classifier, features):
    """The classifier's decision function at every pixel, computed where `features` lives (e.g. the GPU).

    classifier: a LinearSvm (as load_svm returns) or a Pipeline from fit_svm. features: (F, H, W) or (F, k)
    float32 tensor (or array). Returns a float32 array of shape features.shape[1:]; higher = more OoD,
    > 0 = predicted OoD. It equals the Pipeline's decision_function on the pixels' feature vectors.
    """
    if not isinstance(classifier, LinearSvm):
        classifier = LinearSvm.from_pipeline(classifier)
    features = torch.as_tensor(features)
    if features.shape[0] != len(classifier.mean):
        raise ValueError(f"features have {features.shape[0]} channels; the classifier was fitted on "
                         f"{len(classifier.mean)}")
    # the scaler folded into the SVM's weights; centring channel by channel keeps float32 accurate
    weights = classifier.coef / classifier.scale
    score = torch.full(features.shape[1:], classifier.intercept, dtype=torch.float32, device=features.device)
    for channel, (mean, weight) in enumerate(zip(classifier.mean, weights)):
        score += (features[channel].float() - float(mean)) * float(weight)
    return score.cpu().numpy()


def hard_decision_counts(scores, label, in_id, ood_id):
    """Pixel counts of the hard decision (score > 0 = OoD) on one image.

    scores: (H, W) float; label: (H, W) integer. Returns int64 array [TP, FP, FN, TN] over the pixels
    labelled in_id or ood_id (OoD positive); sum it over images and pass it to hard_decision_metrics.
    """
    scores, label = np.asarray(scores), np.asarray(label)
    if scores.shape != label.shape:
        raise ValueError(f"scores {scores.shape} and label {label.shape} must have the same shape")
    predicted = scores > 0
    ood, inlier = label == ood_id, label == in_id
    return np.array([np.count_nonzero(predicted & ood), np.count_nonzero(predicted & inlier),
                     np.count_nonzero(~predicted & ood), np.count_nonzero(~predicted & inlier)], dtype=np.int64)


def hard_decision_metrics(counts):
    """F1, precision, recall and false-positive rate from [TP, FP, FN, TN]; nan where undefined (0 / 0)."""
    tp, fp, fn, tn = (int(x) for x in counts)

    def ratio(a, b):
        return a / b if b else float("nan")

    return {"f1": ratio(2 * tp, 2 * tp + fp + fn), "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "fpr": ratio(fp, fp + tn), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def save_svm(classifier, settings, path):
    """Write the fitted classifier (a Pipeline of fit_svm, or a LinearSvm) and the settings it was made with
    (a plain, JSON-able dict) as one npz of plain arrays, atomically."""
    try:
        settings_json = json.dumps(settings)
    except TypeError as error:
        raise TypeError(f"settings must be a plain dict of JSON values: {error}") from None
    linear = classifier if isinstance(classifier, LinearSvm) else LinearSvm.from_pipeline(classifier)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, format=np.array(FILE_FORMAT), settings=np.array(settings_json), mean=linear.mean,
                 scale=linear.scale, coef=linear.coef, intercept=np.array(linear.intercept))


def load_svm(path):
    """Read a file of save_svm. Returns (LinearSvm, settings dict).

    Never runs code from the file (allow_pickle=False); any other kind of file is a one-line UserError.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no OODMC classifier at {path}; train one with meta_classification.py -moment -SVM")
    remedy = "train it again with meta_classification.py -moment -SVM"
    data = load_npz(path, remedy)
    if str(data.get("format")) != FILE_FORMAT or not {"mean", "scale", "coef", "intercept", "settings"} <= set(data):
        raise UserError(f"{path} is not an OODMC classifier file of this version (expected {FILE_FORMAT!r}); {remedy}")
    linear = LinearSvm(data["mean"].astype(np.float64), data["scale"].astype(np.float64),
                       data["coef"].astype(np.float64), float(data["intercept"]))
    settings = json.loads(str(data["settings"]))
    return linear, settings


def split_images(num_images, eval_size, seed):
    """Disjoint image indices (train, evaluate): `eval_size` images drawn with `seed` are evaluated, the
    SVM trains on pixels of the others. Both sorted lists of int."""
    if num_images <= eval_size:
        raise ValueError(f"OODMC evaluates {eval_size} images (SVM_eval_subsize) and trains on the others, but the "
                         f"set has only {num_images}; lower --SVM_eval_subsize")
    evaluated = np.random.default_rng(seed).choice(num_images, eval_size, replace=False)
    train = np.setdiff1d(np.arange(num_images), evaluated)
    return train.tolist(), np.sort(evaluated).tolist()
