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
