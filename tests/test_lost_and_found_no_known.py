"""LostAndFound-testNoKnown, the SegmentMeIfYouCan leaderboard's selection of the LostAndFound test frames, on a
LostAndFound test split of 1203 tiny frames named like the real sequences."""
import os

import numpy as np
import pytest
from PIL import Image

import config
import evaluation
from src.dataset import build_valset
from src.errors import UserError

LABEL_IDS = np.array([[0, 1, 2], [31, 43, 1]], dtype=np.uint8)  # void, road, hazard / non-hazard objects


def frame_names():
    """1203 frame names, sorted: 17 of excluded sequences first (indices 0..16, which the index list keeps), 1060
    others (they cover every excluded index 17..793), then 26 + 100 more of excluded sequences: 1043 remain.
    Made up to exercise every excluded prefix: on the real test split only 15_Rechbergstr_Deckenpfronn's match."""
    names = [f"01_Hanns_Klemm_Str_45_000006_{b:06d}" for b in range(8)]
    names += [f"01_Hanns_Klemm_Str_45_000007_{b:06d}" for b in range(9)]
    regular = ["01_Hanns_Klemm_Str_45_000008", "02_Hanns_Klemm_Str_44_000000", "04_Maurener_Weg_8_000001",
               "05_Schafgasse_1_000002", "10_Schlossberg_9_000000"]
    names += [f"{seq}_{b:06d}" for seq in regular for b in range(212)]
    names += [f"10_Schlossberg_9_000004_{b:06d}" for b in range(26)]
    names += [f"15_Rechbergstr_Deckenpfronn_000000_{b:06d}" for b in range(100)]
    assert len(names) == 1203 and names == sorted(names)
    return names


@pytest.fixture(scope="module")
def laf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("laf_no_known") / "lost_and_found"
    rgb = Image.new("RGB", (3, 2))
    label = Image.fromarray(LABEL_IDS)
    for name in frame_names()[::-1]:  # written in reverse, so the listing order has to be made
        seq = name[:-14]
        for folder, suffix, image in (("leftImg8bit", "leftImg8bit", rgb), ("gtCoarse", "gtCoarse_labelIds", label)):
            os.makedirs(root / folder / "test" / seq, exist_ok=True)
            image.save(root / folder / "test" / seq / f"{name}_{suffix}.png")
    return root


def benchmark_selection(names):
    """tracks.py's LostAndFound-testNoKnown: sort by name, delete the invalid frame indices, drop the prefixes."""
    names = sorted(names)
    invalid = [17, 37, 55, 72, 91, 110, 129, 153, 174, 197, 218, 353, 490, 618, 686, 792, 793]
    names = [names[i] for i in np.delete(np.arange(len(names)), invalid)]
    prefixes = ("15_Rechbergstr_Deckenpfronn", "01_Hanns_Klemm_Str_45_000006", "01_Hanns_Klemm_Str_45_000007",
                "10_Schlossberg_9_000004")
    return [n for n in names if not any(n.startswith(p) for p in prefixes)]


def test_no_known_selects_the_benchmarks_1043_frames_and_labels(laf_root):
    dataset = build_valset("LostAndFound", str(laf_root), "testNoKnown")
    names = [dataset.frame_name(i) for i in range(len(dataset))]
    assert names == benchmark_selection(frame_names()) and len(names) == 1043
    _, target = dataset[5]
    # road -> 0, every object (hazard 2..30, non-hazard 31, ...) -> 1, void -> 255
    assert target.tolist() == [[255, 0, 1], [1, 1, 0]]
    assert (dataset.train_id_in, dataset.train_id_out) == (0, 1)


def test_no_known_needs_the_whole_test_split(laf_root, tmp_path):
    partial = tmp_path / "lost_and_found"
    for folder in ("leftImg8bit", "gtCoarse"):
        os.makedirs(partial / folder / "test")
        sequence = "02_Hanns_Klemm_Str_44"
        os.symlink(laf_root / folder / "test" / sequence, partial / folder / "test" / sequence)
    with pytest.raises(UserError, match="1203 LostAndFound test frames.*holds 212.*--laf_split test"):
        build_valset("LostAndFound", str(partial), "testNoKnown")


def test_laf_split_names_the_outputs():
    args = evaluation.get_args_parser().parse_args(["--laf_split", "testNoKnown"])
    cfg = config.parse_config(evaluation.GROUPS, args)
    assert config.valset_name(cfg) == "LostAndFound_testNoKnown" and config.valset_split(cfg) == "testNoKnown"
    assert "--laf_split testNoKnown" in config.stage_command(cfg, 4, "-prepare")


def test_no_known_score_maps_are_searched_and_evaluated_with_its_own_labels(laf_root, tmp_path):
    # a perfect detector's maps (1 on every object, 0 on the road) on the tree without *_labelTrainIds.png: the
    # segment search and the metrics read the labels through testNoKnown's rule (objects are OoD id 1, road 0)
    from src.evaluation.score_maps import score_map_path, write_score_map
    from tests.test_meta_classification import run_stage2, run_stage3
    dataset = build_valset("LostAndFound", str(laf_root), "testNoKnown")
    maps = tmp_path / "maps"
    maps.mkdir()
    perfect = (np.array([[255, 0, 1], [1, 1, 0]]) == 1).astype(np.float16)
    for i in range(len(dataset)):
        write_score_map(score_map_path(str(maps), dataset.frame_name(i)), perfect)
    flags = ["-val", "LostAndFound", "--laf_split", "testNoKnown", "--scores_from", str(maps), "--score_threshold", "0.5"]
    run_stage2(laf_root.parent, tmp_path / "io", *flags, "-segment")
    report, _ = run_stage3(laf_root.parent, tmp_path / "io", *flags, "-pixel", "-segment", "--protocol", "all")
    row = report["rows"]["external"]
    assert row["segments"] == {"fp": 0, "fn": 0}
    assert row["protocols"]["exact"]["pixel"]["score"]["ap"] == 1.0
    assert row["protocols"]["smiyc"]["pixel"]["score"]["ap"] == 1.0
    assert report["num_scored"] == 1043
