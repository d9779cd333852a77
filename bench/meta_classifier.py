"""The meta classifier's settings (--meta_classifier) and removal reach (--removal_reach) on the demo's seeds: what
each does to the maps a "+ meta classifier" row scores and exports, against no filter and a perfect filter.

    python bench/meta_classifier.py                           # demo/io and demo_seeds/threads2_native/io1..4
    python bench/meta_classifier.py --io demo/io DIR ...      # the io roots of finished demos

For each io root (a finished `make demo` or `python demo.py --seed N`: its LostAndFound-like test set) and each
map (the OoD-trained model's entropy at t = 0.7, and the external maps max_softmax and noisy_entropy with the
demo's thresholds), it reads the cached segments, decides with each setting the way meta_classification.py
-removal does (`cross_validated_decision`, 10 folds grouped by image), builds the filtered maps the way
evaluation.py scores and exports them (`meta_classified_score` / `meta_filtered_score`), rounds them to float16
as the submission files hold them, and measures: pixel AP and FPR95 under the smiyc protocol (the leaderboard's),
FP / FN segments at t, sIoU / PPV / mean F1 of the components at t (exact, ComponentMetrics at tau = t) and
under smiyc (at its own threshold). "none" is the unfiltered map, "perfect" removes exactly the false-positive
segments (iou0 = 1). A second table shows the removal reach for the recommended setting.
"""
import argparse
import glob
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import demo  # noqa: E402
from src.cache import read_cache  # noqa: E402
from src.dataset.lost_and_found import LostAndFound  # noqa: E402
from src.evaluation.component_metrics import ComponentMetrics  # noqa: E402
from src.evaluation.measure import binary_labels  # noqa: E402
from src.evaluation.protocols import build_protocol, to_float16  # noqa: E402
from src.evaluation.score_maps import read_score_map, score_map_path  # noqa: E402
from src.evaluation.scores import meta_classified_score  # noqa: E402
from src.evaluation.segment_components import SegmentComponents, best_cut, image_table  # noqa: E402
from src.evaluation.segment_errors import count_segment_errors  # noqa: E402
from src.external_maps import meta_filtered_score, removed_mask  # noqa: E402
from src.files import load_json  # noqa: E402
from src.meta_classifier import SETTINGS, cross_validated_decision, segments_to_dataset  # noqa: E402
from src import layout  # noqa: E402
from src.metaseg.segment_search import load_segments, segments_path  # noqa: E402

SEGSIZE, INSTSIZE = 50, 10  # LostAndFound-like: an obstacle-type set
MAPS = ("entropy", "max_softmax", "noisy_entropy")


def load_case(io, kind):
    """(score maps (list of (H, W) float32), labels (list of (H, W) uint8), segment results, low, t) of one map."""
    cache_dir = demo.outputs(io).cache_dir(demo.OOD_EPOCHS)
    caches = [read_cache(p, ("entropy", "gt_train")) for p in sorted(glob.glob(os.path.join(cache_dir, "*.h5")))]
    labels = [binary_labels(c["gt_train"], LostAndFound.train_id_in, LostAndFound.train_id_out) for c in caches]
    if kind == "entropy":
        segments_dir = demo.outputs(io).segments_dir(demo.OOD_EPOCHS)
        scores, low, threshold = [c["entropy"] for c in caches], 0.0, 0.7
    else:
        segments_dir = demo.external_dirs(io, kind)[0]
        maps = os.path.join(io, "external_maps", kind)
        scores = [read_score_map(score_map_path(maps, c["frame_name"])) for c in caches]
        threshold = float(load_json(layout.segments_record(segments_dir), "rerun the demo")["threshold"])
        low = min(float(s.min()) for s in scores)
    results = [load_segments(segments_path(segments_dir, i)) for i in range(len(caches))]
    return scores, labels, results, low, threshold


def decide(results, labels, setting):
    """Per frame, the bool array of removed segments under `setting` (a key of SETTINGS, "none" or "perfect")."""
    X, y, groups, _ = segments_to_dataset([r["metrics"] for r in results])
    if setting == "none":
        removed = np.zeros(len(y), bool)
    elif setting == "perfect":
        removed = y == 1
    else:
        components = SegmentComponents([image_table(r["components"], label, SEGSIZE, INSTSIZE)
                                        for r, label in zip(results, labels)])

        def choose_cut(train, inner):
            prob = np.full(len(y), np.nan)
            prob[train] = inner
            return best_cut(components, prob, np.unique(groups[train]))
        removed = cross_validated_decision(X, y, groups, setting, choose_cut)[1]
    return [removed[groups == i] for i in range(len(results))]


def measure(kind, scores, labels, results, low, threshold, removed, reach):
    """The row's numbers on its float16 maps: dict of ap, fpr95 (smiyc), fp, fn (segments at t), and at_t / smiyc
    component metrics."""
    maps = []
    for i, (score, label) in enumerate(zip(scores, labels)):
        if kind == "entropy" and reach == 0:
            score = meta_classified_score(score, removed_mask(results[i]["components"], removed[i]), threshold)
        else:
            score = meta_filtered_score(score, results[i]["components"], removed[i], label == 255, low, threshold,
                                        reach)
        maps.append(to_float16(score))
    smiyc = build_protocol("smiyc", SEGSIZE, INSTSIZE)
    for score, label in zip(maps, labels):
        smiyc.update(score, label)
    at_t = ComponentMetrics(threshold, SEGSIZE, INSTSIZE)
    passes = [smiyc.components(), at_t]
    for score, label in zip(maps, labels):
        for p in passes:
            p.update(score, label)
    result = smiyc.compute()
    fp, fn = count_segment_errors(results, removed)
    return {"ap": result["ap"], "fpr95": result["fpr95"], "fp": fp, "fn": fn, "at_t": at_t.compute(),
            "smiyc": result["component"]}


def row(seed, kind, setting, reach, m):
    a, s = m["at_t"], m["smiyc"]
    return (f"| {seed} | {kind} | {setting} | {reach:g} | {100 * m['ap']:.2f} | {100 * m['fpr95']:.2f} | {m['fp']} | "
            f"{m['fn']} | {100 * a['siou_gt']:.2f} | {100 * a['ppv']:.2f} | {100 * a['mean_f1']:.2f} | "
            f"{100 * s['siou_gt']:.2f} | {100 * s['ppv']:.2f} | {100 * s['mean_f1']:.2f} |")


HEAD = ("| seed | map | setting | reach | AP | FPR95 | FP at t | FN at t | sIoU at t | PPV at t | mean F1 at t | "
        "sIoU smiyc | PPV smiyc | mean F1 smiyc |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def summary(measured, settings, reach):
    """Per setting, averaged over the cases: the gains against no filter, and the targets of the issue."""
    lines = ["| setting | reach | mean F1 at t gain | perfect's gain | share | PPV at t gain | mean F1 smiyc: cases "
             "lower | worst AP change |", "|---|---|---|---|---|---|---|---|"]
    cases = sorted({(s, k) for s, k, _, _ in measured})
    for setting in settings:
        gain, perfect, ppv, lower, ap = [], [], [], 0, []
        for case in cases:
            none, mine, best = (measured[(*case, name, r)] for name, r in (("none", 0), (setting, reach),
                                                                              ("perfect", reach)))
            gain.append(mine["at_t"]["mean_f1"] - none["at_t"]["mean_f1"])
            perfect.append(best["at_t"]["mean_f1"] - none["at_t"]["mean_f1"])
            ppv.append(mine["at_t"]["ppv"] - none["at_t"]["ppv"])
            lower += mine["smiyc"]["mean_f1"] < none["smiyc"]["mean_f1"] - 1e-12
            ap.append(mine["ap"] - none["ap"])
        lines.append(f"| {setting} | {reach:g} | {100 * np.mean(gain):+.2f} | {100 * np.mean(perfect):+.2f} | "
                     f"{np.mean(gain) / np.mean(perfect):.2f} | {100 * np.mean(ppv):+.2f} | {lower} of {len(cases)} | "
                     f"{100 * min(ap):+.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = [str(ROOT / "demo" / "io")] + [str(ROOT / "demo_seeds" / "threads2_native" / f"io{s}") for s in range(1, 5)]
    parser.add_argument("--io", nargs="+", default=default, help="io roots of finished demos (seed N: its order)")
    parser.add_argument("--reaches", type=float, nargs="+", default=[0.0, 0.25, 0.5],
                        help="--removal_reach values of the second table")
    parser.add_argument("--reach", type=float, default=0.25, help="the reach of the first table")
    parser.add_argument("--setting", default="boosting", choices=list(SETTINGS), help="the setting of the second table")
    args = parser.parse_args()
    started = time.time()
    settings = list(SETTINGS)
    measured = {}
    lines = [HEAD]
    for seed, io in enumerate(args.io):
        if not os.path.isfile(layout.results_file(demo.external_dirs(io, "noisy_entropy")[1])):
            print(f"seed {seed}: no finished demo in {io}; skipped", flush=True)
            continue
        for kind in MAPS:
            scores, labels, results, low, threshold = load_case(io, kind)
            removals = {name: decide(results, labels, name) for name in ["none", "perfect", *settings]}
            for name, removed in removals.items():
                reaches = {0.0, args.reach} | (set(args.reaches) if name in ("perfect", args.setting) else set())
                for reach in [0.0] if name == "none" else sorted(reaches):
                    m = measure(kind, scores, labels, results, low, threshold, removed, reach)
                    measured[(seed, kind, name, reach)] = m
                    if reach in (0.0, args.reach):
                        lines.append(row(seed, kind, name, reach, m))
            print(f"seed {seed} {kind}: done ({time.time() - started:.0f} s)", flush=True)
    print("\n".join(lines))
    print("\nAveraged over the cases (gains in points against no filter; share = gain / perfect filter's gain):\n")
    print(summary(measured, settings, args.reach))
    print(summary(measured, settings, 0.0))
    print(f"\nThe removal reach, setting {args.setting}:\n")
    print("\n".join(summary(measured, [args.setting], r).splitlines()[-1] for r in args.reaches))
    print(f"\n({time.time() - started:.0f} s; smiyc: src/evaluation/protocols.py of this checkout)")


if __name__ == "__main__":
    main()
