"""Rehearsal of the real run: every stage on the full-resolution demo world, as a user runs it.

    python bench/rehearsal.py [--root rehearsal] [--size full]     (make rehearsal)
    python bench/rehearsal.py --size tiny --root <DIR>             (the smoke mode)

It writes `preparation/make_demo_world.py --size full` (1024x2048 street frames; --size tiny for the smoke
test), then runs each stage's command line in its own process: the preparation scripts, one epoch of
OoD training, -prepare (with writer processes), -segment, -removal, evaluation and OODMC with few
samples; with the small model on every frame, then with DeepLabV3+_WideResNet38 (random weights,
--init_ckpt none) on the two frames of Fishyscapes LostAndFound (its OODMC evaluation, which costs what its
-moment pass does, is left out for time). For each stage it measures the wall time
per image, the peak resident memory of its largest process (the writer and search workers included) and
the bytes it wrote per image, and extrapolates to the real datasets (REAL below). A stage that fails is a
row saying so, and the rehearsal goes on. One table is printed and the same rows are written as JSON.

OODMC runs with --moment_num samples; its time is extrapolated linearly to the 128 samples of the real
run (an upper bound: the network's prefix before the first dropout runs once per image whatever the
number of samples). Training's files are its checkpoints: their bytes count once per epoch of the real
run. The peak memory of -prepare is that of the network's process (its writer processes are smaller).
On 2 quiet CPU cores the whole rehearsal takes about 10 minutes (9.3 on the development VM); --size tiny (the smoke mode, small model only)
about two.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL, WIDE = "DeepLabV3+_TinyResNet", "DeepLabV3+_WideResNet38"
GIB, MIB = 2 ** 30, 2 ** 20
OODMC_SAMPLES = 128  # the real run's --moment_num
# real images per stage (SPEC section 1): Cityscapes 2975 train + 500 val; LostAndFound 1203 test + 1036
# train; COCO train2017 118287; the five test sets together 1885 frames (LostAndFound 1203, Fishyscapes
# 100 + 30, RoadAnomaly21 10 + 100, RoadObstacle21 30 + 412), 1373 of them labelled; OoD training 4 epochs
# of 2975 Cityscapes + 10% COCO images; OODMC features on all but 100 labelled frames, evaluation on 100.
REAL = {"cityscapes": (3475, "Cityscapes train+val"), "lost_and_found": (2239, "LostAndFound test+train"),
        "coco": (118287, "COCO train2017"), "training": (4 * 3272, "4 epochs x 3272"),
        "test": (1885, "5 test sets"), "labelled": (1373, "labelled test frames"),
        "oodmc_train": (1273, "OODMC training frames"), "oodmc_eval": (100, "OODMC evaluation frames")}
# runs a command and reports the peak resident memory of the largest process of its tree (Linux merges
# each reaped child's peak into its parent's RUSAGE_CHILDREN)
MEASURE = ("import json, resource, subprocess, sys\n"
           "code = subprocess.run(sys.argv[2:]).returncode\n"
           "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
           "json.dump({'returncode': code, 'peak_bytes': peak}, open(sys.argv[1], 'w'))\n")


def tree_bytes(*folders):
    """Total size of the files under `folders`."""
    return sum(path.stat().st_size for folder in folders if os.path.isdir(folder)
               for path in Path(folder).rglob("*") if path.is_file())


@dataclass
class Stage:
    """One command line of the rehearsal. images: what it processes (a function: known once it ran); real:
    (images, name) of the real run; samples: OODMC samples (time scales to OODMC_SAMPLES); epochs: its files
    are one per epoch (a checkpoint), not per image."""
    name: str
    argv: list
    images: object
    real: tuple = None
    samples: int = None
    epochs: int = None


def run_stage(stage, log, roots, timeout):
    """Run `python stage.argv` in its own process tree; returns its row of the table."""
    before = tree_bytes(*roots)
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile(suffix=".json") as report, open(log, "a") as out:
        out.write(f"\n== {stage.name}\n$ python {' '.join(stage.argv)}\n")
        out.flush()
        try:
            subprocess.run([sys.executable, "-c", MEASURE, report.name, sys.executable, *stage.argv], cwd=ROOT,
                           stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
            with open(report.name) as f:
                measured = json.load(f)
            status = "ok" if measured["returncode"] == 0 else f"failed (exit {measured['returncode']}, see {log})"
        except subprocess.TimeoutExpired:
            measured, status = {"peak_bytes": None}, f"timed out after {timeout} s"
    seconds = time.perf_counter() - started
    written = tree_bytes(*roots) - before
    images = stage.images() if callable(stage.images) else stage.images
    per_image = seconds / max(images, 1)
    real_count, real_name = stage.real or (None, "")
    real_bytes = written * stage.epochs if stage.epochs else written / max(images, 1) * (real_count or 0)
    return {"stage": stage.name, "status": status, "images": images, "seconds": seconds, "s_per_image": per_image,
            "peak_gib": measured["peak_bytes"] / GIB if measured["peak_bytes"] else None,
            "mib_per_image": written / MIB / max(images, 1), "real_images": real_count, "real_set": real_name,
            "real_hours": (per_image * (OODMC_SAMPLES / stage.samples if stage.samples else 1) * real_count / 3600
                           if real_count else None),
            "real_gib": real_bytes / GIB if real_count else None}


def trained_images(log):
    """Images of the last training epoch, from ood_training.py's summary line."""
    found = re.findall(r"loss [-\d.naif]+, (\d+) images", Path(log).read_text())
    return int(found[-1]) if found else 0


def stages(data, io, log, size, samples):
    """Every Stage, in the order a user runs them. tiny (the smoke mode): the small model alone, small crops."""
    full = size == "full"
    frames = dict(cityscapes=6, lost_and_found=6, coco=8, test=4) if full else \
        dict(cityscapes=6, lost_and_found=5, coco=6, test=3)
    common = ["--data_root", data, "--io_root", io]
    out = [
        Stage("prepare_cityscapes", ["preparation/prepare_cityscapes.py", "--data_root", data], frames["cityscapes"],
              REAL["cityscapes"]),
        Stage("prepare_lost_and_found", ["preparation/prepare_lost_and_found.py", "--data_root", data],
              frames["lost_and_found"], REAL["lost_and_found"]),
        Stage("prepare_coco_segmentation", ["preparation/prepare_coco_segmentation.py", "--data_root", data],
              frames["coco"], REAL["coco"]),
        Stage("make_cropped_coco", ["preparation/make_cropped_coco.py", "--data_root", data,
                                    *([] if full else ["--min_area", "10"])], frames["coco"], REAL["coco"]),
        Stage("cs_coco_embedding (2 per object)", ["src/dataset/cs_coco_embedding.py", "--data_root", data,
                                                   "--cs_per_coco", "2", *([] if full else ["--half_window", "16"])],
              frames["coco"]),
    ]
    models = [(SMALL, "small", ["-val", "LostAndFound"], frames["test"], "2")]
    if full:
        models.append((WIDE, "WRN38", ["-val", "Fishyscapes", "--fs_split", "LostAndFound"], 2, "1"))
    for model, short, valset, count, workers in models:
        run = [*common, "-model", model, "--num_workers", workers]
        evaluated = [*run, *valset, "-epoch", "1"]
        oodmc = ["--moment_num", str(samples), "--max_batch_size_for_moment", str(samples),
                 "--SVM_eval_subsize", "1", "--svm_points_num", "2000" if full else "20"]
        out += [
            Stage(f"{short}: OoD training, 1 epoch",
                  ["ood_training.py", *run, "--init_ckpt", "none", "-nepochs", "1", "--batch_size", "2",
                   *([] if full else ["-crop", "32"])], lambda: trained_images(log), REAL["training"], epochs=4),
            Stage(f"{short}: -prepare", ["meta_classification.py", *evaluated, "-prepare"], count, REAL["test"]),
            Stage(f"{short}: -segment", ["meta_classification.py", *evaluated, "-segment"], count, REAL["test"]),
            Stage(f"{short}: -removal", ["meta_classification.py", *evaluated, "-removal"], count, REAL["labelled"]),
            Stage(f"{short}: evaluation", ["evaluation.py", *evaluated], count, REAL["labelled"]),
            Stage(f"{short}: OODMC -moment -SVM", ["meta_classification.py", *evaluated, "-moment", "-SVM", *oodmc],
                  count - 1, REAL["oodmc_train"], samples),
        ]
        if model == SMALL:  # WideResNet38's evaluation pass costs what its -moment pass does: left out for time
            out.append(Stage(f"{short}: OODMC evaluation", ["evaluation.py", *evaluated, "-moment"], 1,
                             REAL["oodmc_eval"], samples))
    return out


def table(rows):
    lines = [f"{'stage':34s} {'images':>6} {'s/image':>8} {'peak GiB':>8} {'MiB/image':>9} | "
             f"{'real set':>26} {'hours':>7} {'GiB':>7}  status"]
    for r in rows:
        peak = f"{r['peak_gib']:8.2f}" if r["peak_gib"] is not None else f"{'-':>8}"
        real = (f"{r['real_set'] + ' (' + str(r['real_images']) + ')':>26} {r['real_hours']:7.1f} {r['real_gib']:7.1f}"
                if r["real_images"] else f"{'-':>26} {'-':>7} {'-':>7}")
        lines.append(f"{r['stage']:34s} {r['images']:6d} {r['s_per_image']:8.2f} {peak} {r['mib_per_image']:9.1f} | "
                     f"{real}  {r['status']}")
    total_hours = sum(r["real_hours"] or 0 for r in rows)
    total_gib = sum(r["real_gib"] or 0 for r in rows)
    lines.append(f"{'total on the real datasets':34s} {'':>6} {'':>8} {'':>8} {'':>9} | {'':>26} {total_hours:7.1f} "
                 f"{total_gib:7.1f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="rehearsal", help="folder for the world, the outputs, the log and the JSON; "
                                                           "a previous rehearsal there is deleted first")
    parser.add_argument("--size", default="full", choices=("full", "tiny"), help="tiny: the smoke mode, small model")
    parser.add_argument("--samples", type=int, default=2, help="OODMC MC-dropout samples per image")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds one stage may take")
    parser.add_argument("--json", help="where the rows go (default: <root>/rehearsal.json)")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    data, io = os.path.join(root, "datasets"), os.path.join(root, "io")
    log = os.path.join(root, "rehearsal.log")
    if os.path.isfile(log):  # every stage must start from nothing, or it would skip its work
        shutil.rmtree(root)
    elif os.path.isdir(root) and os.listdir(root):
        raise SystemExit(f"{root} holds files of something else; choose an empty or new --root")
    os.makedirs(root, exist_ok=True)
    args.json = args.json or os.path.join(root, "rehearsal.json")
    started = time.perf_counter()
    world = [sys.executable, "preparation/make_demo_world.py", "--data_root", data, "--size", args.size]
    subprocess.run(world, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"{args.size} demo world in {data}: {time.perf_counter() - started:.0f} s; stage logs in {log}", flush=True)
    rows = []
    for stage in stages(data, io, log, args.size, args.samples):
        rows.append(run_stage(stage, log, (data, io), args.timeout))
        print(f"{stage.name}: {rows[-1]['status']}, {rows[-1]['seconds']:.0f} s", flush=True)
        report = {"size": args.size, "root": root, "minutes": (time.perf_counter() - started) / 60, "rows": rows,
                  "oodmc_samples": args.samples, "cpus": len(os.sched_getaffinity(0))}
        if args.json:  # after every stage, so that an interrupted rehearsal keeps what it measured
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    print(table(rows))
    print(f"rehearsal finished in {report['minutes']:.1f} min on {report['cpus']} CPUs; hours and GiB extrapolate "
          f"s/image and bytes/image to the real sets (OODMC from {args.samples} to {OODMC_SAMPLES} samples)")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
