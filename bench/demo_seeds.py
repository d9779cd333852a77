"""The demo on several seeds: does each claim hold, and by how much? One row per seed.

    python bench/demo_seeds.py [--seeds 0 1 2 3 4] [--root demo_seeds]
    OMP_NUM_THREADS=1 python bench/demo_seeds.py            # the same, one thread
    ONEDNN_MAX_CPU_ISA=AVX2 python bench/demo_seeds.py      # the same, without AVX-512

Each seed runs `demo.py --seed N` (its printout goes to <io root>/demo.log) with the world under
<root>/world<N> and the outputs under <root>/<setting>/io<N>, where <setting> names the thread count
and instruction set forced by the environment. demo.py skips the training of a seed that already
trained and the images already cached, so an interrupted sweep continues and a finished seed only runs
its evaluation steps again (about 2 minutes). AP and AUROC are of the normalised entropy, in percent;
"LAF" is the LostAndFound-like test set, "RO" the RoadObstacle21-like track; "true kept" counts the
true OoD segments the meta classifier keeps.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import demo  # noqa: E402


def setting_name():
    """The math-library setting of this environment, as a directory name."""
    threads = os.environ.get("OMP_NUM_THREADS", demo.THREADS)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
    return f"threads{threads}_{isa.lower()}"


def run_seed(seed, root):
    """Run (or resume) the demo of `seed`; returns (exit status, minutes spent now, io root)."""
    data, io = os.path.join(root, f"world{seed}"), os.path.join(root, setting_name(), f"io{seed}")
    os.makedirs(io, exist_ok=True)
    started = time.time()
    with open(os.path.join(io, "demo.log"), "a") as log:
        status = subprocess.run([sys.executable, "demo.py", "--seed", str(seed), "--data_root", data, "--io_root", io],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    return status, (time.time() - started) / 60, io


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--root", default="demo_seeds", help="where the worlds and outputs of the seeds go")
    args = parser.parse_args()
    print(f"setting: {setting_name()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}); "
          f"claim 1 needs an AP gain >= {demo.MIN_AP_GAIN:.0f} and no AUROC loss", flush=True)
    print("| seed | LAF AP | LAF AUROC | RO AP | RO AUROC | FP segments | true kept | minutes | claims |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    failed = 0
    for seed in args.seeds:
        status, minutes, io = run_seed(seed, args.root)
        try:
            f = demo.demo_figures(io)
        except FileNotFoundError:
            print(f"| {seed} | demo stopped with status {status}; see {os.path.join(io, 'demo.log')} |", flush=True)
            failed += 1
            continue
        ok = demo.check_claims(io)[1]
        failed += not ok
        print(f"| {seed} | {f['laf_ap_before']:.1f} -> {f['laf_ap_after']:.1f} | "
              f"{f['laf_auroc_before']:.1f} -> {f['laf_auroc_after']:.1f} | "
              f"{f['ro_ap_before']:.1f} -> {f['ro_ap_after']:.1f} | {f['ro_auroc_before']:.1f} -> {f['ro_auroc_after']:.1f} | "
              f"{f['fp_before']} -> {f['fp_after']} | {f['kept_true']} / {f['true_segments']} | {minutes:.1f} | "
              f"{'hold' if ok else 'FAIL'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
