"""merge_rows: a partial evaluation updates its columns and keeps the others, never mixing other inputs."""
from src.evaluation.report import merge_rows

FULL = {
    "baseline": {"checkpoint": "b.pth", "identity": "B", "pixel": {"entropy": 1}, "segments": {"fp": 3}},
    "entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T", "pixel": {"entropy": 2},
                                   "segments": {"fp": 5}},
    "+ meta classifier": {"checkpoint": "t.pth", "identity": "T, meta classifier M", "segments": {"fp": 1}},
}


def test_a_pixel_run_keeps_the_segment_columns_and_the_order():
    pixel = {"entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T", "pixel": {"entropy": 7}},
             "baseline": {"checkpoint": "b.pth", "identity": "B", "pixel": {"entropy": 6}}}
    merged = merge_rows(FULL, pixel)
    assert list(merged) == list(FULL)
    assert merged["entropy training (epoch 4)"] == {"checkpoint": "t.pth", "identity": "T", "pixel": {"entropy": 7},
                                                    "segments": {"fp": 5}}
    assert merged["+ meta classifier"] == FULL["+ meta classifier"]
    assert merge_rows({}, pixel) == {"baseline": pixel["baseline"], "entropy training (epoch 4)":
                                     pixel["entropy training (epoch 4)"]}


def test_rows_of_other_inputs_are_replaced_not_merged():
    retrained = {"entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T2", "pixel": {"entropy": 9}}}
    merged = merge_rows(FULL, retrained)
    assert merged["entropy training (epoch 4)"] == retrained["entropy training (epoch 4)"]
    assert "+ meta classifier" not in merged, "the meta classifier row of the old checkpoint went with it"
    assert merged["baseline"] == FULL["baseline"]


def test_protocols_and_scores_are_merged_key_by_key():
    earlier = {"baseline": {"checkpoint": "b.pth", "identity": "B", "pixel": {"entropy": 1, "sml": 2},
                            "protocols": {"meta-ood": {"pixel": {"entropy": 3}}}, "segments": {"fp": 3}}}
    smiyc = {"baseline": {"checkpoint": "b.pth", "identity": "B", "protocols": {"smiyc": {"pixel": {"entropy": 4}}}}}
    merged = merge_rows(earlier, smiyc)["baseline"]
    assert merged["protocols"] == {"meta-ood": {"pixel": {"entropy": 3}}, "smiyc": {"pixel": {"entropy": 4}}}
    assert merged["pixel"] == {"entropy": 1, "sml": 2} and merged["segments"] == {"fp": 3}
    again = merge_rows({"baseline": merged},
                       {"baseline": {"checkpoint": "b.pth", "identity": "B", "pixel": {"entropy": 9}}})
    assert again["baseline"]["pixel"] == {"entropy": 9, "sml": 2}


def test_a_full_evaluation_keeps_the_other_protocols_of_the_checkpoint_row():
    new = {"entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T", "pixel": {"entropy": 8}},
           "+ meta classifier": {"checkpoint": "t.pth", "identity": "T, meta classifier M", "segments": {"fp": 2}}}
    earlier = {**FULL, "entropy training (epoch 4)": {**FULL["entropy training (epoch 4)"],
                                                      "protocols": {"smiyc": {"pixel": {"entropy": 5}}}}}
    merged = merge_rows(earlier, new)
    assert merged["entropy training (epoch 4)"]["protocols"] == {"smiyc": {"pixel": {"entropy": 5}}}
    assert merged["+ meta classifier"]["segments"] == {"fp": 2}


def test_rows_of_score_maps_are_kept_apart_by_their_identity():
    earlier = {"external": {"scores_from": "/m", "identity": "S1", "pixel": {"score": 1}},
               "+ meta classifier": {"scores_from": "/m", "identity": "S1, meta classifier M", "pixel": {"score": 2}}}
    merged = merge_rows(earlier, {"external": {"scores_from": "/m", "identity": "S2", "pixel": {"score": 3}}})
    assert merged == {"external": {"scores_from": "/m", "identity": "S2", "pixel": {"score": 3}}}
