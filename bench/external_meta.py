"""The meta classifier on external score maps: metrics of the score map alone against score map + the
softmax's MetaSeg metrics, on the demo world's LostAndFound-like test set.

For each external map (max_softmax and noisy_entropy, made from the small OoD-trained model's inference cache by
preparation/make_external_score_maps.py) it runs, as a user would,
  meta_classification.py --scores_from MAPS -segment -removal --metric_families score_map | all
  evaluation.py --scores_from MAPS -pixel -segment
and prints the meta classifier's AUROC and AP, and the PPV and mean F1 of the components before and after it,
for both metric families (the score-map-only run is the reference measured in the same run).

    python bench/external_meta.py                  # uses demo/ (after `make demo`), else builds it in a temp dir
    python bench/external_meta.py --demo DIR       # a folder holding datasets/ and io/ as `make demo` writes them
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import config  # noqa: E402
from src import layout  # noqa: E402
import demo as demo_script  # noqa: E402

MODEL, BASELINE_EPOCHS, OOD_EPOCHS = demo_script.MODEL, demo_script.BASELINE_EPOCHS, demo_script.OOD_EPOCHS
MAPS = {"max_softmax": ["--score_threshold", "0.5"], "noisy_entropy": ["--score_quantile", "0.98"]}


def run(*argv):
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def build_demo_world(demo):
    """The demo's data, small model and OoD-trained inference cache under `demo`: demo.py's steps (seed 0) up
    to the end of OoD training, then the cache."""
    data, io = str(demo / "datasets"), str(demo / "io")
    trained = demo_script.ood_checkpoint(io, OOD_EPOCHS)
    for title, argv in demo_script.demo_steps(data, io, 0):
        run(*argv)
        if demo_script.done_when(io).get(title) == trained:
            break
    run("meta_classification.py", "--data_root", data, "--io_root", io, "-model", MODEL, "--num_workers", "0",
        "--init_ckpt", demo_script.baseline_checkpoint(io), "-val", "LostAndFound", "-epoch", str(OOD_EPOCHS),
        "-prepare")


def measure(demo, kind, families):
    """(meta classifier summary, evaluation rows) of one map and one metric family setting."""
    data, io = str(demo / "datasets"), str(demo / "io")
    baseline = os.path.join(io, "weights", "cityscapes", f"{MODEL}_epoch_{BASELINE_EPOCHS}.pth")
    maps = os.path.join(io, "bench_external_maps", kind)
    common = ["--data_root", data, "--io_root", io, "-model", MODEL, "--num_workers", "0", "--init_ckpt", baseline,
              "-val", "LostAndFound", "-epoch", str(OOD_EPOCHS), "--scores_from", maps, *MAPS[kind]]
    run("meta_classification.py", *common, "-segment", "-removal", "--metric_families", families)
    run("evaluation.py", *common, "-pixel", "-segment")
    outputs = config.layout_of(common)
    with open(layout.meta_classifier_file(outputs.external_segments_dir(), "json")) as f:
        summary = json.load(f)
    with open(layout.results_file(outputs.external_results_dir())) as f:
        rows = json.load(f)["rows"]
    return summary, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", default=str(ROOT / "demo"), help="folder with the demo's datasets/ and io/")
    args = parser.parse_args()
    demo = Path(args.demo).resolve()
    cache = demo / "io" / "LostAndFound" / f"{MODEL}_entropy_epoch_{OOD_EPOCHS}_alpha_0.9" / "cache"
    scratch = None
    if not cache.is_dir():
        scratch = tempfile.TemporaryDirectory(prefix="external_meta_")
        demo = Path(scratch.name)
        cache = demo / "io" / "LostAndFound" / f"{MODEL}_entropy_epoch_{OOD_EPOCHS}_alpha_0.9" / "cache"
        print(f"no demo world with an inference cache in {args.demo}; building one in {demo} (several minutes)")
        build_demo_world(demo)
    started = time.time()
    lines = ["| map | segment metrics | segments (FP) | meta AUROC | meta AP | removed (FP) | PPV before -> after | "
             "mean F1 before -> after |", "|---|---|---|---|---|---|---|---|"]
    for kind in MAPS:
        run("preparation/make_external_score_maps.py", "--cache", str(cache), "--kind", kind, "--out",
            str(demo / "io" / "bench_external_maps" / kind))
        reference = None
        for families in ("score_map", "all"):
            summary, rows = measure(demo, kind, families)
            exact = {name: row["protocols"]["exact"] for name, row in rows.items()}
            before, after = exact["external"]["component"], exact["+ meta classifier"]["component"]
            lines.append(
                f"| {kind} | {' + '.join(summary['families'])} ({len(summary['features'])}) | {summary['num_segments']} "
                f"({summary['num_false_positives']}) | {summary['auroc']:.3f} | {summary['ap']:.3f} | "
                f"{summary['removed']} ({summary['removed_false_positives']}) | {100 * before['ppv']:.2f} -> "
                f"{100 * after['ppv']:.2f} | {100 * before['mean_f1']:.2f} -> {100 * after['mean_f1']:.2f} |")
            if reference is None:
                reference = summary["auroc"], after["mean_f1"]
            else:
                lines.append(f"| {kind} | softmax added: difference | | {summary['auroc'] - reference[0]:+.3f} | | | | "
                             f"{100 * (after['mean_f1'] - reference[1]):+.2f} |")
    print("\n".join(lines))
    print(f"({time.time() - started:.0f} s; meta classifier: 10 folds grouped by image; demo world in {demo})")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
