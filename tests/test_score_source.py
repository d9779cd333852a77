"""A checkpoint's cache as a score source: each score reads only its own arrays and gives the numbers it gave when
stage 3 read the whole softmax in float32."""
from types import SimpleNamespace

import numpy as np
import pytest

from src.cache import cache_path, read_cache, write_cache
from src.evaluation.scores import SCORES, ClassStats, standardized_max_logit_score
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


@pytest.fixture
def caches(tmp_path):
    """(paths, class statistics) of three cached frames, the second without labels."""
    rng = np.random.default_rng(0)
    stats = ClassStats(19)
    paths = []
    for i in range(3):
        probs, max_logit, logsumexp, gt_train = frame_arrays(rng)
        stats.update(max_logit, probs.argmax(0))
        paths.append(cache_path(tmp_path, i))
        write_cache(paths[-1], probs, max_logit, gt_train, gt_train, {"checkpoint": "x", "has_label": i != 1},
                    logsumexp)
    return paths, stats


def source_of(paths, stats):
    dataset = SimpleNamespace(train_id_in=IN, train_id_out=OUT, has_label=lambda i: i != 1)
    return CheckpointScores(paths, dataset, None, stats)


def todays_scores(path, stats):
    """The five scores as stage 3 computed them from every array of the cache, the softmax in float32."""
    cache = read_cache(path)
    probs = cache["probs"]
    mean, std = stats.mean_std()
    return {"entropy": cache["entropy"], "max_softmax": (1 - probs.max(axis=0)).astype(np.float32),
            "max_logit": -cache["max_logit"], "energy": -cache["logsumexp"],
            "sml": standardized_max_logit_score(cache["max_logit"], probs.argmax(axis=0), mean, std)}


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
