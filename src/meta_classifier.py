"""The meta classifier: logistic regression on segment metrics that predicts false-positive OoD segments.

Target `iou0` is 1 for a predicted OoD segment that touches no ground-truth OoD pixel. Every metric
except the targets is a feature (75 for 19 classes), z-scored.
"""
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score
from sklearn.model_selection import GroupKFold, LeaveOneOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TARGETS = ("iou", "iou0", "prc")


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
        raise ValueError("grouped k-fold needs segments from at least 2 images; use --meta_cv loo")


def cross_validated_fp_probability(X, y, groups, mode="kfold", folds=10):
    """Out-of-fold probability that each segment is a false positive (iou0 = 1).

    mode "kfold": `folds` folds grouped by image (fewer when there are fewer images), the scaler fitted
    inside each fold, so no statistic of a test segment leaks into its classifier.
    mode "loo": leave one segment out with features z-scored over all segments first (as published).
    """
    _check_trainable(y, groups, mode)
    prob = np.zeros(len(y))
    if mode == "loo":
        X = (X - X.mean(0)) / (X.std(0) + 1e-10)
        splits = LeaveOneOut().split(X)
        model = LogisticRegression(solver="liblinear")
    else:
        splits = GroupKFold(n_splits=min(folds, len(np.unique(groups)))).split(X, y, groups)
        model = make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear"))
    for train, test in splits:
        if y[train].min() == y[train].max():
            prob[test] = float(y[train][0])  # a fold that saw one kind can only predict that kind
            continue
        prob[test] = model.fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return prob


def classifier_scores(y, prob):
    """AUROC, AP (false positive = positive class) and accuracy of the 0.5 decision."""
    return {"auroc": float(roc_auc_score(y, prob)), "ap": float(average_precision_score(y, prob)),
            "accuracy": float(accuracy_score(y, prob >= 0.5))}
