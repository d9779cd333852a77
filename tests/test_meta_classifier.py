import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from src.meta_classifier import (classifier_scores, cross_validated_decision, cross_validated_fp_probability,
                                 segments_to_dataset)


def synthetic_images(num_images=12, seed=0):
    """Segments whose false-positive label follows a known linear rule of two of their metrics."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(num_images):
        n = int(rng.integers(5, 30))
        E, S = rng.normal(size=n), rng.normal(size=n)
        fp = (1.5 * E - S + 0.2 * rng.normal(size=n) > 0).astype(int)
        images.append({"iou0": fp.tolist(), "iou": (1 - fp).tolist(), "prc": [0.0] * n, "E": E.tolist(),
                       "S": S.tolist(), "mean_x": rng.normal(size=n).tolist()})
    return images


def test_dataset_stacks_features_without_the_targets():
    images = synthetic_images(3)
    X, y, groups, names = segments_to_dataset(images)
    assert names == ["E", "S", "mean_x"]
    assert X.shape == (sum(len(m["iou0"]) for m in images), 3)
    assert np.array_equal(y, np.concatenate([m["iou0"] for m in images]))
    assert np.array_equal(X[:, 1], np.concatenate([m["S"] for m in images]))
    assert np.array_equal(np.unique(groups), [0, 1, 2])


@pytest.mark.parametrize("mode", ["kfold", "loo"])
def test_a_separable_rule_is_learned(mode):
    X, y, groups, _ = segments_to_dataset(synthetic_images())
    scores = classifier_scores(y, cross_validated_fp_probability(X, y, groups, mode=mode))
    assert scores["auroc"] > 0.95 and scores["accuracy"] > 0.85


def test_grouped_folds_never_split_an_image():
    X, y, groups, _ = segments_to_dataset(synthetic_images())
    for train, test in GroupKFold(n_splits=10).split(X, y, groups):
        assert not set(groups[train]) & set(groups[test])


def test_the_kfold_scaler_sees_only_the_training_fold():
    # One image holds every segment with a huge feature value; with a leaking scaler it would not matter
    # which fold it lands in, with a per-fold scaler its segments are far outside the training range.
    images = synthetic_images()
    images[0]["E"] = (np.asarray(images[0]["E"]) + 1e6).tolist()
    X, y, groups, _ = segments_to_dataset(images)
    prob = cross_validated_fp_probability(X, y, groups, mode="kfold")
    assert np.ptp(prob[groups == 0]) < 1e-6  # saturated: the outlier image is scored by extrapolation


@pytest.mark.parametrize("labels, message", [([], "no OoD segments"), ([1, 1, 1], "all 3 segments are false positives"),
                                             ([0, 0], "all 2 segments are true OoD segments")])
def test_untrainable_inputs_say_why(labels, message):
    metrics = [{"iou0": labels, "iou": labels, "E": [0.5] * len(labels)}, {"iou0": [], "iou": [], "E": []}]
    X, y, groups, _ = segments_to_dataset(metrics)
    with pytest.raises(ValueError, match=message):
        cross_validated_fp_probability(X, y, groups)


def test_the_paper_setting_is_the_published_recipe_and_the_half_cut():
    # reference: the published recipe written out with sklearn (10 folds grouped by image, z-scoring and
    # liblinear logistic regression fitted on the training folds), cut at 0.5
    X, y, groups, _ = segments_to_dataset(synthetic_images())
    expected = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=10).split(X, y, groups):
        scaler = StandardScaler().fit(X[train])
        model = LogisticRegression(solver="liblinear").fit(scaler.transform(X[train]), y[train])
        expected[test] = model.predict_proba(scaler.transform(X[test]))[:, 1]
    prob, removed, cut = cross_validated_decision(X, y, groups, "paper")
    assert np.array_equal(prob, expected) and np.array_equal(removed, expected >= 0.5) and np.all(cut == 0.5)
    assert np.array_equal(prob, cross_validated_fp_probability(X, y, groups))


@pytest.mark.parametrize("setting", ["logistic_f1", "boosting_f1"])
def test_the_nested_cut_never_sees_the_held_out_fold(setting):
    X, y, groups, _ = segments_to_dataset(synthetic_images(20))
    seen = []

    def choose_cut(train, inner):
        seen.append(set(train.tolist()))
        return float(np.median(inner))  # a cut that depends on every inner probability
    _, _, cut = cross_validated_decision(X, y, groups, setting, choose_cut)
    folds = list(GroupKFold(n_splits=10).split(X, y, groups))
    assert len(seen) == len(folds)
    for (train, test), got in zip(folds, seen):
        assert got == set(train.tolist()) and not got & set(test.tolist())
    # garbage in one held-out fold's features changes the classifier and cut of the other folds, never its own
    train, test = folds[3]
    noisy = X.copy()
    noisy[test] = np.random.default_rng(0).normal(size=noisy[test].shape) * 1e3
    _, _, cut_noisy = cross_validated_decision(noisy, y, groups, setting, lambda tr, inner: float(np.median(inner)))
    assert np.array_equal(cut_noisy[test], cut[test])


def test_boosting_learns_a_rule_the_linear_model_cannot():
    rng = np.random.default_rng(0)
    images = []
    for _ in range(20):
        E, S = rng.normal(size=30), rng.normal(size=30)
        fp = ((E > 0) ^ (S > 0)).astype(int)  # exclusive or: no line separates it
        images.append({"iou0": fp.tolist(), "iou": (1 - fp).tolist(), "E": E.tolist(), "S": S.tolist()})
    X, y, groups, _ = segments_to_dataset(images)
    linear = classifier_scores(y, cross_validated_decision(X, y, groups, "paper")[0])
    trees = classifier_scores(y, cross_validated_decision(X, y, groups, "boosting")[0])
    assert linear["auroc"] < 0.65 and trees["auroc"] > 0.9


def test_leave_one_segment_out_is_the_logistic_regressions_alone():
    X, y, groups, _ = segments_to_dataset(synthetic_images(3))
    with pytest.raises(ValueError, match="published protocol of the logistic regression"):
        cross_validated_fp_probability(X, y, groups, mode="loo", model="boosting")
