"""The score-source interface (src/score_source.py): a checkpoint's cache and any method's score maps go through
one measurement, and the same maps give the same numbers whichever source serves them."""
import numpy as np
import pytest

import config
import meta_classification
from src.dataset import build_valset
from src.evaluation.measure import measure
from src.evaluation.score_maps import export_score_maps
from src.external_maps import ExternalMaps
from src.score_source import checked_scores
from tests.test_meta_classification import epoch0, run_stage2

SIZES = config.COMPONENT_SIZES["LostAndFound"]


@pytest.fixture(scope="module")
def sources(prepared_world, tiny_checkpoints, tmp_path_factory):
    """(the trained checkpoint's cache as a source, its entropy exported as submission maps as a source)."""
    io_root = tmp_path_factory.mktemp("source_io")
    run_stage2(prepared_world, io_root, *epoch0(tiny_checkpoints[1]), "-prepare")
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "test")
    cfg = config.parse_config(meta_classification.GROUPS, meta_classification.get_args_parser().parse_args(
        ["--io_root", str(io_root), "-model", "DeepLabV3+_TinyResNet", *epoch0(tiny_checkpoints[1])]))
    cached = checked_scores(config.layout(cfg).cache_dir(0), dataset, str(tiny_checkpoints[1]), "make it")
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
