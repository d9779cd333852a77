"""The meta classifier: logistic regression on segment metrics that predicts false-positive OoD segments.

Target `iou0` is 1 for a predicted OoD segment that touches no ground-truth OoD pixel. Every metric
except the targets is a feature (75 for 19 classes), z-scored.

Beside the paper's setting (logistic regression, remove when the probability is >= 0.5) a setting may use
gradient-boosted trees, and may choose the cut on the probability by nested cross-validation: within each
outer fold, grouped folds of the training images alone give out-of-fold probabilities of the training
segments, and the cut that maximises the component F1 at the segment threshold on those images is applied
to the held-out fold (`cross_validated_decision`).
"""
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score
from sklearn.model_selection import GroupKFold, LeaveOneOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TARGETS = ("iou", "iou0", "prc")
# --meta_classifier: (model, how the cut on the false-positive probability is chosen); "paper" is the published one
SETTINGS = {"paper": ("logistic", "0.5"), "logistic_f1": ("logistic", "f1"), "boosting": ("boosting", "0.5"),
            "boosting_f1": ("boosting", "f1")}
INNER_FOLDS = 5  # folds of the nested cross-validation that chooses the cut, on the training images alone


def build_model(kind):
    """A fresh classifier: "logistic" (z-scored features, liblinear, as published) or "boosting"
    (histogram gradient boosting; shallow trees and a slow rate, since a demo set holds 100-2000 segments;
    deterministic: no early stopping, no subsampling at these sizes)."""
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear"))
    if kind == "boosting":
        return HistGradientBoostingClassifier(learning_rate=0.05, max_iter=200, max_depth=3, min_samples_leaf=10,
                                              l2_regularization=1.0, early_stopping=False, random_state=0)
    raise ValueError(f"unknown meta classifier model {kind!r}; choose logistic or boosting")


def segments_to_dataset(per_image_metrics):
    """Stack the segment metrics of all images.

    per_image_metrics: list (one per image) of dicts metric name -> sequence (one value per segment).
    Returns X (n, F) float64, y (n,) int (iou0), groups (n,) int (image index), feature names (sorted).
    """
    names = sorted(k for k in per_image_metrics[0] if k not in TARGETS) if per_image_metrics else []
    columns, y, groups = [], [], []
    for image, metrics in enumerate(per_image_metrics):
        n = len(metrics["iou0"])
        columns.append(np.array([np.asarray(metrics[k], dtype=np.float64) for k in names]).reshape(len(names), n))
        y.append(np.asarray(metrics["iou0"], dtype=np.int64))
        groups.append(np.full(n, image, dtype=np.int64))
    if not y or sum(len(v) for v in y) == 0:
        return np.zeros((0, len(names))), np.zeros(0, np.int64), np.zeros(0, np.int64), names
    return np.concatenate(columns, axis=1).T, np.concatenate(y), np.concatenate(groups), names


def _check_trainable(y, groups, mode):
    if len(y) == 0:
        raise ValueError("no OoD segments were found, so there is nothing to meta-classify "
                         "(lower -threshold or check the evaluated checkpoint)")
    if y.min() == y.max():
        kind = "false positives" if y[0] == 1 else "true OoD segments"
        raise ValueError(f"all {len(y)} segments are {kind}: the meta classifier needs both kinds to train")
    if mode == "kfold" and len(np.unique(groups)) < 2:
        raise ValueError("grouped k-fold needs segments from at least 2 images; with one image use --meta_cv loo "
                         "--meta_classifier paper")


def cross_validated_fp_probability(X, y, groups, mode="kfold", folds=10, model="logistic"):
    """Out-of-fold probability that each segment is a false positive (iou0 = 1).

    mode "kfold": `folds` folds grouped by image (fewer when there are fewer images), the scaler fitted
    inside each fold, so no statistic of a test segment leaks into its classifier.
    mode "loo": leave one segment out with features z-scored over all segments first (as published;
    logistic regression only). model: "logistic" or "boosting" (`build_model`).
    """
    _check_trainable(y, groups, mode)
    prob = np.zeros(len(y))
    if mode == "loo":
        if model != "logistic":
            raise ValueError("leave-one-segment-out is the published protocol of the logistic regression alone")
        X = (X - X.mean(0)) / (X.std(0) + 1e-10)
        splits = LeaveOneOut().split(X)
        model = LogisticRegression(solver="liblinear")
    else:
        splits = GroupKFold(n_splits=min(folds, len(np.unique(groups)))).split(X, y, groups)
        model = build_model(model)
    for train, test in splits:
        if y[train].min() == y[train].max():
            prob[test] = float(y[train][0])  # a fold that saw one kind can only predict that kind
            continue
        prob[test] = model.fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return prob


def cross_validated_decision(X, y, groups, setting="paper", choose_cut=None, folds=10):
    """Out-of-fold false-positive probability and removal decision of every segment, grouped by image.

    setting: a key of SETTINGS. With a cut of "0.5", prob equals cross_validated_fp_probability(X, y, groups,
    "kfold", folds, model) and a segment is removed when prob >= 0.5 (the paper's setting: today's numbers).
    With "f1", each outer fold's cut is `choose_cut(train, inner_prob)`: train the indices of the fold's
    training segments, inner_prob their out-of-fold probabilities from INNER_FOLDS folds grouped by image
    over those segments alone, so the held-out fold sees neither the classifier nor the cut it is judged by.
    Returns prob (n,) float64, removed (n,) bool and cut (n,) float64 (the cut applied to each segment).
    """
    model, cut_rule = SETTINGS[setting]
    _check_trainable(y, groups, "kfold")
    prob, cut = np.zeros(len(y)), np.full(len(y), 0.5)
    for train, test in GroupKFold(n_splits=min(folds, len(np.unique(groups)))).split(X, y, groups):
        if y[train].min() == y[train].max():
            prob[test] = float(y[train][0])  # a fold that saw one kind can only predict that kind
            continue
        prob[test] = build_model(model).fit(X[train], y[train]).predict_proba(X[test])[:, 1]
        if cut_rule == "f1":
            try:
                inner = cross_validated_fp_probability(X[train], y[train], groups[train], folds=INNER_FOLDS,
                                                       model=model)
            except ValueError:  # the training folds hold one image or one kind of segment: keep the paper's cut
                continue
            cut[test] = choose_cut(train, inner)
    return prob, prob >= cut, cut


def classifier_scores(y, prob):
    """AUROC, AP (false positive = positive class) and accuracy of the 0.5 decision."""
    return {"auroc": float(roc_auc_score(y, prob)), "ap": float(average_precision_score(y, prob)),
            "accuracy": float(accuracy_score(y, prob >= 0.5))}
