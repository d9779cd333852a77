"""The score sources (src/score_source.py): a checkpoint's cache and any method's score maps go through one
measurement, the same maps give the same numbers whichever source serves them, and each score of a cache reads
only its own arrays and gives the numbers it gave when stage 3 read the whole softmax in float32."""
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import config
import meta_classification
from src.cache import TOP_FIELDS, cache_path, read_cache, write_cache
from src.dataset import build_valset
from src.evaluation.component_metrics import ComponentMetrics
from src.evaluation.measure import measure
from src.evaluation.protocols import PROTOCOLS
from src.evaluation.score_maps import export_score_maps
from src.evaluation.scores import SCORES, ClassStats
from src.external_maps import ExternalMaps
from src.score_source import CheckpointScores, checked_scores
from tests.test_meta_classification import epoch0, run_stage2

SHAPE = (48, 64)
IN, OUT = 1, 2  # LostAndFound's train ids
SIZES = config.COMPONENT_SIZES["LostAndFound"]


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



@pytest.fixture(scope="module")
def sources(prepared_world, tiny_checkpoints, tmp_path_factory):
    """(the trained checkpoint's cache as a source, its entropy exported as submission maps as a source)."""
    io_root = tmp_path_factory.mktemp("source_io")
    run_stage2(prepared_world, io_root, *epoch0(tiny_checkpoints[1]), "-prepare")
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "test")
    cfg = config.parse_config(meta_classification.GROUPS, meta_classification.get_args_parser().parse_args(
        ["--io_root", str(io_root), "-model", "DeepLabV3+_TinyResNet", *epoch0(tiny_checkpoints[1])]))
    cached = checked_scores(config.layout(cfg), dataset, 0, "make it")
    assert cached.checkpoint == str(tiny_checkpoints[1])
    export_score_maps(cached, str(io_root / "maps"))
    return cached, ExternalMaps(str(io_root / "maps"), dataset)


def test_both_sources_serve_the_same_frames_labels_and_scores(sources):
    cached, maps = sources
    a, b = list(cached.frames()), list(maps.frames())
    assert [i for i, _, _ in a] == [i for i, _, _ in b] and len(a) > 0
    for (_, ours, label), (_, theirs, their_label) in zip(a, b):
        np.testing.assert_array_equal(label, their_label)
        # the submission files hold the entropy in float16, as the benchmark reads it
        np.testing.assert_array_equal(ours["entropy"].astype(np.float16), theirs["score"])
    for i in range(len(cached)):
        np.testing.assert_array_equal(cached.void(i), maps.void(i))


def test_the_same_maps_give_the_same_smiyc_numbers_from_either_source(sources):
    # smiyc reads the checkpoint's entropy in float16, as --export_smiyc stores it, so the two agree exactly
    cached, maps = sources
    ours = measure(cached, ["entropy"], ["smiyc"], *SIZES)["smiyc"]["entropy"]
    theirs = measure(maps, ["score"], ["smiyc"], *SIZES)["smiyc"]["score"]
    assert ours.pop("component") == theirs.pop("component")
    for key in ("auroc", "ap", "fpr95"):
        assert ours[key] == theirs[key], key


def test_a_meta_filter_that_removes_nothing_leaves_the_map_unchanged(sources):
    _, maps = sources
    for source in sources:
        results = [{"components": np.zeros_like(source.void(i), dtype=np.int32)} for i in range(len(source))]
        removed = [np.zeros(0, bool) for _ in range(len(source))]
        for reach in (0.0, 0.25):
            if source is maps:
                for r in results:
                    r["score_min"] = np.float32(0)
            keep = source.meta_filter(results, removed, 0.7, reach)
            score = source.score(0)
            np.testing.assert_array_equal(keep(0, score), score)


@pytest.mark.parametrize("index", [0, 1])
def test_the_component_pass_scores_the_filtered_maps_of_the_first_pass(sources, monkeypatch, index):
    # the first pass keeps the pixels a filter changed for the second, up to a memory budget (beyond it the map is
    # computed again); kept or not, the numbers are the same, and the filter runs once per frame when they are kept
    source = sources[index]
    calls = []

    def filter_map(i, score):
        calls.append(i)
        changed = score.astype(np.float32)
        changed[score > np.quantile(score, 0.8)] *= np.float32(0.5)
        changed[:3, :3] = 0.25
        return changed

    def measured():
        at_t = {key: ComponentMetrics(0.5, *SIZES) for key in (source.score_name, "filtered")}
        result = measure(source, [source.score_name], PROTOCOLS, *SIZES, {"filtered": filter_map}, at_t)
        return result, {key: c.compute() for key, c in at_t.items()}

    kept = measured()
    labelled = sum(source.dataset.has_label(i) for i in range(len(source)))
    assert len(calls) == labelled > 0
    calls.clear()
    monkeypatch.setattr("src.evaluation.measure.KEPT_CHANGES_BYTES", 0)
    again = measured()
    assert len(calls) == 2 * labelled
    np.testing.assert_equal(kept, again)
    assert kept[1]["filtered"]["ppv"] != kept[1][source.score_name]["ppv"]
