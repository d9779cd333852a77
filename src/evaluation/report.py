"""Results files of stage 3: a JSON file with every number and a markdown file with the tables."""
import math
import os

import numpy as np

from src.errors import UserError
from src.files import atomic_path, load_json, save_json

# the shape of the files save_report writes; a file without "schema" is the first shape (1), whose rows held the
# exact protocol's "pixel" and "component" in the row itself
RESULTS_SCHEMA = 2


def _percent(value):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def protocol_entry(row, protocol):
    """{"pixel": {score: result}, "component": ...} of one results row under `protocol`, row["protocols"][protocol]
    ({} when absent)."""
    return row.get("protocols", {}).get(protocol, {})


def set_protocol_entry(row, protocol, pixel, component=None):
    """Store one protocol's results in a results row, where protocol_entry finds them."""
    row.setdefault("protocols", {})[protocol] = {"pixel": pixel, **({"component": component} if component else {})}


META_ROW = "+ meta classifier"


def file_measured(rows, name, measured, scores, main, meta_key, at_threshold):
    """Put what measure() (src/evaluation/measure.py) returned into the rows: row `name` gets every score of
    `scores`, with the component metrics of its score `main`; the "+ meta classifier" row, when measured, its
    filtered map under `meta_key`; each row its component metrics at the segment threshold (`at_threshold`, keyed
    as measure's). A protocol that left a map out (meta-ood, scores outside [0, 1]) has no entry for it."""
    for key, row, results_key in ((main, name, None), (META_ROW, META_ROW, meta_key)):
        if row not in rows or not any(key in by_key for by_key in measured.values()):
            continue
        if key in at_threshold:
            rows[row]["component_at_t"] = at_threshold[key].compute()
        for protocol, by_key in measured.items():
            if key in by_key:
                pixel = {s: by_key[s] for s in scores if s in by_key} if results_key is None else \
                    {results_key: by_key[key]}
                set_protocol_entry(rows[row], protocol, pixel, by_key[key].pop("component", None))


def results_table(rows, protocols=("exact",), score="entropy", meta_score="entropy+meta"):
    """The paper-style table (entropy score; one line per row, and per protocol when there are several), then
    every score of every checkpoint. Pixel columns show `score` (`meta_score` in the "+ meta classifier" row).

    rows: {row name: {"protocols": {protocol: {"pixel": {score: result}, "component": ComponentMetrics.compute()}},
    "segments": {fp, fn}, "component_at_t": the same at the segment threshold t}}, any part optional; protocols: the
    names of src.evaluation.protocols.PROTOCOLS that were run.
    """
    several = len(protocols) > 1
    head = "| | protocol " if several else "| "
    lines = [head + "| AUROC | AP | FPR95 | FP segments | FN segments | sIoU | PPV | mean F1 | sIoU at t | PPV at t | "
             "mean F1 at t |", "|---|" + "---|" * (12 if several else 11)]
    for name, row in rows.items():
        at_t = row.get("component_at_t", {})  # the same in every protocol's line: the segments' own threshold
        for protocol in protocols:
            entry = protocol_entry(row, protocol)
            pixel = entry.get("pixel", {}).get(meta_score if name == "+ meta classifier" else score, {})
            segments, component = row.get("segments", {}), entry.get("component", {})
            lines.append(f"| {name} " + (f"| {protocol} " if several else "") +
                         f"| {_percent(pixel.get('auroc'))} | {_percent(pixel.get('ap'))} | "
                         f"{_percent(pixel.get('fpr95'))} | {segments.get('fp', '–')} | {segments.get('fn', '–')} | "
                         f"{_percent(component.get('siou_gt'))} | {_percent(component.get('ppv'))} | "
                         f"{_percent(component.get('mean_f1'))} | {_percent(at_t.get('siou_gt'))} | "
                         f"{_percent(at_t.get('ppv'))} | {_percent(at_t.get('mean_f1'))} |")
    lines += ["", "| checkpoint | " + ("protocol | " if several else "") + "score | AUROC | AP | FPR95 |",
              "|---|---|---|---|---|" + ("---|" if several else "")]
    lines += [f"| {name} | " + (f"{protocol} | " if several else "") +
              f"{score} | {_percent(r['auroc'])} | {_percent(r['ap'])} | {_percent(r['fpr95'])} |"
              for name, row in rows.items() for protocol in protocols
              for score, r in protocol_entry(row, protocol).get("pixel", {}).items()]
    return "\n".join(lines) + "\n"


def earlier_rows(path):
    """The rows of the results file `path` (results.json) of an earlier run in this code's shape, or {} when there
    is none. A file of the first shape is converted, so that the next save writes it anew with nothing lost; a
    file of a newer meta-ood is refused."""
    if not os.path.isfile(path):
        return {}
    report = load_json(path, "delete it and rerun the evaluation without stage flags")
    schema = report.get("schema", 1)
    if not isinstance(schema, int) or schema > RESULTS_SCHEMA:
        raise UserError(f"{path} was written by a newer meta-ood (results schema {schema}, this one reads up to "
                        f"{RESULTS_SCHEMA}); update meta-ood, or move the file away to evaluate anew")
    rows = report.get("rows", {})
    return rows if schema == RESULTS_SCHEMA else {name: _from_first_schema(row) for name, row in rows.items()}


def _from_first_schema(row):
    """A results row of schema 1 in this code's shape: its "pixel" and "component" go to protocols["exact"]."""
    exact = {key: row[key] for key in ("pixel", "component") if key in row}
    moved = {key: value for key, value in row.items() if key not in exact}
    if exact:
        moved["protocols"] = {"exact": exact, **row.get("protocols", {})}
    return moved


def merge_rows(earlier, new):
    """The rows of an earlier results file updated with those of a later, maybe partial run, key by key: `-pixel`
    after a full evaluation keeps the segment columns, another --protocol is added beside the earlier ones, and
    a score of the pixel results replaces only itself. A row whose "identity" changed (another checkpoint or
    score maps, other labels, another meta classifier) is replaced whole, so numbers of different inputs never
    share a row. Order: baseline, the checkpoints (or score maps), "+ meta classifier"."""
    current = {}
    for row in new.values():
        current.setdefault(_source(row), []).append(str(row.get("identity", "")))
    # an earlier row of a source evaluated now that was made from other inputs ("+ meta classifier" after the
    # checkpoint was retrained) would mix numbers of different inputs: it goes
    merged = {name: row for name, row in earlier.items()
              if _source(row) not in current or any(str(row.get("identity", "")).startswith(identity)
                                                    for identity in current[_source(row)])}
    for name, row in new.items():
        merged[name] = _merge_row(merged[name], row) if merged.get(name, {}).get("identity") == row.get("identity") \
            else dict(row)
    rank = {"baseline": 0, "+ meta classifier": 2}
    order = list(new) + [name for name in merged if name not in new]
    return {name: merged[name] for name in sorted(order, key=lambda name: (rank.get(name, 1), order.index(name)))}


def _source(row):
    """What a results row measures: its checkpoint, or the --scores_from folder."""
    return row.get("checkpoint") or row.get("scores_from")


def _merge_row(earlier, new):
    """One row of the same inputs: `new`'s entries over `earlier`'s, the protocols one by one, and within a
    protocol its pixel scores one by one (a `-pixel` run keeps the protocol's component metrics)."""
    row = {**earlier, **new}
    if "protocols" in earlier and "protocols" in new:
        row["protocols"] = dict(earlier["protocols"])
        for protocol, entry in new["protocols"].items():
            before = row["protocols"].get(protocol, {})
            row["protocols"][protocol] = {**before, **entry}
            if "pixel" in before and "pixel" in entry:
                row["protocols"][protocol]["pixel"] = {**before["pixel"], **entry["pixel"]}
    return row


def protocols_in(rows, protocols):
    """The names of `protocols` (all, in table order) that some row holds results of."""
    return [p for p in protocols if any(protocol_entry(row, p) for row in rows.values())]


def oodmc_table(report):
    """OODMC's SVM against the entropy on the same images, and the SVM's hard decision."""
    lines = ["| score | AUROC | AP | FPR95 |", "|---|---|---|---|"]
    lines += [f"| {name} | {_percent(report[key]['auroc'])} | {_percent(report[key]['ap'])} | "
              f"{_percent(report[key]['fpr95'])} |" for name, key in (("OODMC SVM", "svm"), ("entropy", "entropy"))]
    hard = report["hard_decision"]
    lines += ["", f"SVM decision > 0: F1 {hard['f1']:.4f}, precision {hard['precision']:.4f}, FPR {hard['fpr']:.4f}"]
    return "\n".join(lines) + "\n"


def jsonable(obj):
    """`obj` with numpy values as plain Python ones and NaN as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    return obj.item() if isinstance(obj, np.generic) else obj


def save_report(out_dir, name, report, title, table):
    """Write <name>.json (the whole report, with its "schema") and <name>.md (title and table) into out_dir,
    atomically."""
    # oodmc.json gets the key too: a file stage 3 writes then always says which shape it has, and one writer
    # needs no list of which files are versioned
    save_json(jsonable({"schema": RESULTS_SCHEMA, **report}), os.path.join(out_dir, f"{name}.json"))
    with atomic_path(os.path.join(out_dir, f"{name}.md")) as tmp, open(tmp, "w") as f:
        f.write(f"# {title}\n\n{table}")
