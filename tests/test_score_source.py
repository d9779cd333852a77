"""A checkpoint's cache as a score source: each score reads only its own arrays and gives the numbers it gave when
stage 3 read the whole softmax in float32."""
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from src.cache import TOP_FIELDS, cache_path, read_cache, write_cache
from src.evaluation.component_metrics import ComponentMetrics
from src.evaluation.measure import measure
from src.evaluation.protocols import PROTOCOLS
from src.evaluation.scores import SCORES, ClassStats
from src.score_source import CheckpointScores

SHAPE = (48, 64)
IN, OUT = 1, 2  # LostAndFound's train ids


def frame_arrays(rng):
    """(probs (19, H, W) float32, max_logit, logsumexp, gt_train) of a frame with ties and zeros in its softmax."""
    logits = rng.normal(0, 4, (19, *SHAPE)).astype(np.float32)
    logits[:, :4, :4] = 0  # all classes tie: the first is the predicted one
    logits[[3, 7], 5, :] = 60  # two classes tie above the rest, whose probabilities underflow to 0
    probs = np.exp(logits - logits.max(0))
    probs /= probs.sum(0)
    gt_train = np.full(SHAPE, 255, dtype=np.uint8)
    gt_train[20:] = IN
    gt_train[30:40, 10:30] = OUT
    gt_train[22:26, 40:44] = 0
    return probs, logits.max(0), np.log(np.exp(logits).sum(0)), gt_train


def write_frames(folder, stored_top=True):
    """(paths, class statistics) of three cached frames in `folder`, the second without labels; without max_prob
    and pred unless `stored_top`, as caches written before they were stored."""
    rng = np.random.default_rng(0)
    stats = ClassStats(19)
    paths = []
    for i in range(3):
        probs, max_logit, logsumexp, gt_train = frame_arrays(rng)
        stats.update(max_logit, probs.argmax(0))
        paths.append(cache_path(folder, i))
        write_cache(paths[-1], probs, max_logit, gt_train, gt_train, {"checkpoint": "x", "has_label": i != 1},
                    logsumexp)
        with h5py.File(paths[-1], "a") as f:
            assert all(key in f for key in TOP_FIELDS)
            if not stored_top:
                for key in TOP_FIELDS:
                    del f[key]
    return paths, stats


@pytest.fixture(params=[True, False], ids=["written now", "written before max_prob and pred were stored"])
def caches(tmp_path, request):
    return write_frames(tmp_path, request.param)


def source_of(paths, stats):
    dataset = SimpleNamespace(train_id_in=IN, train_id_out=OUT, has_label=lambda i: i != 1)
    return CheckpointScores(paths, dataset, None, stats)


def todays_scores(path, stats):
    """The five scores as stage 3 computed them from every array of the cache, the softmax in float32."""
    cache = read_cache(path)
    probs, pred = cache["probs"], cache["probs"].argmax(axis=0)
    mean, std = (np.asarray(v, dtype=np.float32) for v in stats.mean_std())
    return {"entropy": cache["entropy"], "max_softmax": (1 - probs.max(axis=0)).astype(np.float32),
            "max_logit": -cache["max_logit"], "energy": -cache["logsumexp"],
            "sml": ((mean[pred] - cache["max_logit"]) / std[pred]).astype(np.float32)}


def test_frames_give_the_scores_of_the_float32_softmax_bit_for_bit(caches):
    paths, stats = caches
    frames = list(source_of(paths, stats).frames(SCORES))
    assert [i for i, _, _ in frames] == [0, 2]  # the unlabelled frame is left out
    for i, maps, label in frames:
        expected = todays_scores(paths[i], stats)
        assert list(maps) == list(SCORES)
        for name in SCORES:
            assert maps[name].dtype == np.float32 and maps[name].tobytes() == expected[name].tobytes(), name
        assert set(np.unique(label)) == {0, 1, 255}


def test_each_score_reads_only_its_own_arrays(caches, monkeypatch):
    import src.score_source
    paths, stats = caches
    read = []
    monkeypatch.setattr(src.score_source, "read_cache", lambda path, fields: read.append(fields) or
                        read_cache(path, fields))
    list(source_of(paths, stats).frames(["max_softmax", "sml"]))
    assert read[0] == ["gt_train", "max_prob", "max_logit", "pred"]
    read.clear()
    list(source_of(paths, stats).frames(["entropy"]))
    assert read[0] == ["gt_train", "entropy"]


def test_caches_with_max_prob_and_pred_and_without_measure_the_same(tmp_path):
    results = []
    for stored_top in (True, False):
        paths, stats = write_frames(tmp_path / str(stored_top), stored_top)
        at_t = {"entropy": ComponentMetrics(0.5, 5, 2)}
        results.append(measure(source_of(paths, stats), SCORES, PROTOCOLS, 5, 2, at_threshold=at_t))
        results[-1]["at_t"] = at_t["entropy"].compute()
    assert set(results[0]["exact"]) == set(SCORES) and results[0]["exact"]["entropy"]["component"]["num_gt"] == 2
    np.testing.assert_equal(results[0], results[1])
