"""merge_rows: a partial evaluation updates its columns and keeps the others, never mixing other inputs; the results
file carries its schema, an older one is read in the new shape and a newer one is refused."""
import json

import pytest

from src.errors import UserError, user_message
from src.evaluation.report import RESULTS_SCHEMA, earlier_rows, merge_rows, protocol_entry, save_report


def exact(pixel, **rest):
    return {"protocols": {"exact": {"pixel": pixel}}, **rest}


FULL = {
    "baseline": {"checkpoint": "b.pth", "identity": "B", **exact({"entropy": 1}), "segments": {"fp": 3}},
    "entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T", **exact({"entropy": 2}),
                                   "segments": {"fp": 5}},
    "+ meta classifier": {"checkpoint": "t.pth", "identity": "T, meta classifier M", "segments": {"fp": 1}},
}


def test_a_pixel_run_keeps_the_segment_columns_and_the_order():
    pixel = {"entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T", **exact({"entropy": 7})},
             "baseline": {"checkpoint": "b.pth", "identity": "B", **exact({"entropy": 6})}}
    merged = merge_rows(FULL, pixel)
    assert list(merged) == list(FULL)
    assert merged["entropy training (epoch 4)"] == {"checkpoint": "t.pth", "identity": "T", **exact({"entropy": 7}),
                                                    "segments": {"fp": 5}}
    assert merged["+ meta classifier"] == FULL["+ meta classifier"]
    assert merge_rows({}, pixel) == {"baseline": pixel["baseline"], "entropy training (epoch 4)":
                                     pixel["entropy training (epoch 4)"]}


def test_rows_of_other_inputs_are_replaced_not_merged():
    retrained = {"entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T2", **exact({"entropy": 9})}}
    merged = merge_rows(FULL, retrained)
    assert merged["entropy training (epoch 4)"] == retrained["entropy training (epoch 4)"]
    assert "+ meta classifier" not in merged, "the meta classifier row of the old checkpoint went with it"
    assert merged["baseline"] == FULL["baseline"]


def test_protocols_and_scores_are_merged_key_by_key():
    earlier = {"baseline": {"checkpoint": "b.pth", "identity": "B", "segments": {"fp": 3}, "protocols": {
        "exact": {"pixel": {"entropy": 1, "sml": 2}, "component": {"mean_f1": 0.5}},
        "meta-ood": {"pixel": {"entropy": 3}}}}}
    smiyc = {"baseline": {"checkpoint": "b.pth", "identity": "B", "protocols": {"smiyc": {"pixel": {"entropy": 4}}}}}
    merged = merge_rows(earlier, smiyc)["baseline"]
    assert merged["protocols"] == {**earlier["baseline"]["protocols"], "smiyc": {"pixel": {"entropy": 4}}}
    assert merged["segments"] == {"fp": 3}
    again = merge_rows({"baseline": merged}, {"baseline": {"checkpoint": "b.pth", "identity": "B", "protocols": {
        "exact": {"pixel": {"entropy": 9}}, "meta-ood": {"pixel": {"max_softmax": 8}}}}})["baseline"]
    # a later -pixel run with other scores replaces only those, in every protocol, and keeps the component metrics
    assert again["protocols"]["exact"] == {"pixel": {"entropy": 9, "sml": 2}, "component": {"mean_f1": 0.5}}
    assert again["protocols"]["meta-ood"] == {"pixel": {"entropy": 3, "max_softmax": 8}}
    assert again["protocols"]["smiyc"] == {"pixel": {"entropy": 4}}


def test_a_full_evaluation_keeps_the_other_protocols_of_the_checkpoint_row():
    new = {"entropy training (epoch 4)": {"checkpoint": "t.pth", "identity": "T", **exact({"entropy": 8})},
           "+ meta classifier": {"checkpoint": "t.pth", "identity": "T, meta classifier M", "segments": {"fp": 2}}}
    row = FULL["entropy training (epoch 4)"]
    earlier = {**FULL, "entropy training (epoch 4)": {**row, "protocols": {**row["protocols"],
                                                                           "smiyc": {"pixel": {"entropy": 5}}}}}
    merged = merge_rows(earlier, new)
    assert merged["entropy training (epoch 4)"]["protocols"] == {"exact": {"pixel": {"entropy": 8}},
                                                                 "smiyc": {"pixel": {"entropy": 5}}}
    assert merged["+ meta classifier"]["segments"] == {"fp": 2}


def test_rows_of_score_maps_are_kept_apart_by_their_identity():
    earlier = {"external": {"scores_from": "/m", "identity": "S1", **exact({"score": 1})},
               "+ meta classifier": {"scores_from": "/m", "identity": "S1, meta classifier M", **exact({"score": 2})}}
    merged = merge_rows(earlier, {"external": {"scores_from": "/m", "identity": "S2", **exact({"score": 3})}})
    assert merged == {"external": {"scores_from": "/m", "identity": "S2", **exact({"score": 3})}}


def save(folder, rows):
    save_report(folder, "results", {"valset": "LostAndFound", "rows": rows}, "title", "table\n")
    return folder / "results.json"


def test_rows_round_trip_through_the_results_file(tmp_path):
    rows = {"baseline": {"checkpoint": "b.pth", "identity": "B", "segments": {"fp": 3, "fn": 1}, "protocols": {
        "exact": {"pixel": {"entropy": {"ap": 0.25, "auroc": float("nan")}}, "component": {"mean_f1": 0.5}},
        "smiyc": {"pixel": {"entropy": {"ap": 0.5}}}}}}
    path = save(tmp_path, rows)
    written = json.loads(path.read_text())
    assert written["schema"] == RESULTS_SCHEMA == 2 and written["valset"] == "LostAndFound"
    read = earlier_rows(path)
    assert read["baseline"]["protocols"]["exact"]["pixel"]["entropy"] == {"ap": 0.25, "auroc": None}
    assert read["baseline"]["protocols"]["smiyc"] == rows["baseline"]["protocols"]["smiyc"]
    assert read["baseline"]["segments"] == {"fp": 3, "fn": 1}
    later = {"baseline": {"checkpoint": "b.pth", "identity": "B",
                          "protocols": {"exact": {"pixel": {"max_logit": {"ap": 0.75}}}}}}
    merged = merge_rows(read, later)
    assert protocol_entry(merged["baseline"], "exact") == {
        "pixel": {"entropy": {"ap": 0.25, "auroc": None}, "max_logit": {"ap": 0.75}}, "component": {"mean_f1": 0.5}}
    assert earlier_rows(save(tmp_path, merged)) == merged


def test_a_results_file_of_the_first_shape_is_read_in_the_new_one(tmp_path):
    # results.json as meta-ood wrote it before the schema: no "schema", the exact protocol in the row itself
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"valset": "LostAndFound", "protocols": ["exact", "smiyc"], "rows": {
        "baseline": {"checkpoint": "b.pth", "identity": "B", "pixel": {"entropy": {"ap": 0.25}, "sml": {"ap": 0.125}},
                     "segments": {"fp": 3}, "component": {"mean_f1": 0.5}, "component_at_t": {"mean_f1": 0.375},
                     "protocols": {"smiyc": {"pixel": {"entropy": {"ap": 0.5}}}}},
        "+ meta classifier": {"checkpoint": "b.pth", "identity": "B, meta classifier M", "segments": {"fp": 1}}}}))
    read = earlier_rows(path)
    assert read["baseline"] == {
        "checkpoint": "b.pth", "identity": "B", "segments": {"fp": 3}, "component_at_t": {"mean_f1": 0.375},
        "protocols": {"exact": {"pixel": {"entropy": {"ap": 0.25}, "sml": {"ap": 0.125}},
                                "component": {"mean_f1": 0.5}},
                      "smiyc": {"pixel": {"entropy": {"ap": 0.5}}}}}
    assert read["+ meta classifier"] == {"checkpoint": "b.pth", "identity": "B, meta classifier M",
                                         "segments": {"fp": 1}}
    # a later -pixel run of the entropy alone keeps the old file's other numbers, and the file is written anew
    later = {"baseline": {"checkpoint": "b.pth", "identity": "B",
                          "protocols": {"exact": {"pixel": {"entropy": {"ap": 0.75}}}}}}
    written = json.loads(save(tmp_path, merge_rows(read, later)).read_text())
    assert written["schema"] == 2
    row = written["rows"]["baseline"]
    assert "pixel" not in row and "component" not in row
    assert row["protocols"]["exact"] == {"pixel": {"entropy": {"ap": 0.75}, "sml": {"ap": 0.125}},
                                         "component": {"mean_f1": 0.5}}
    assert row["protocols"]["smiyc"] == {"pixel": {"entropy": {"ap": 0.5}}} and row["segments"] == {"fp": 3}
    assert written["rows"]["+ meta classifier"]["segments"] == {"fp": 1}


@pytest.mark.parametrize("schema", [99, "2"])
def test_a_results_file_of_a_newer_or_unknown_schema_is_refused_in_one_line(tmp_path, schema):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema": schema, "rows": {"baseline": {"protocols": {}}}}))
    with pytest.raises(UserError) as refused:
        earlier_rows(path)
    message = user_message(refused.value)
    assert "\n" not in message and str(path) in message and f"schema {schema}" in message
    assert "update meta-ood" in message and "move the file away" in message
