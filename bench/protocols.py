"""Seconds and peak memory of each evaluation protocol's pixel metrics against the code it reproduces.

    python bench/protocols.py [--frames 100] [--height 1024 --width 2048]

100 frames of 1024 x 2048 (2.1e8 pixels) by default, entropy-like scores in [0, 1] (in-distribution near 0,
OoD near 1), 5% OoD and 5% void pixels, made by a seeded generator; making a frame is not timed. Each side
runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own:

- exact, meta-ood, smiyc: src/evaluation/protocols.py, one frame at a time (`update`, then `compute`);
- meta-ood original: the published meta-ood code's pixel metrics as a faithful port (tests/
  protocol_reference.py: np.histogram of each frame, the rescaled pixel lists materialised, sklearn);
- smiyc benchmark: the road-anomaly-benchmark's PixBinaryClass as a faithful port (the same module:
  np.quantile and np.histogram per frame, frames merged by np.argsort, its curve code). The port, not
  the benchmark's package, is timed: it needs no install and runs in the same interpreter; it computes
  exactly what the benchmark computes (tests/test_protocols.py).
The component metrics are not timed here.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.evaluation.protocols import build_protocol  # noqa: E402
from tests.protocol_reference import meta_ood_reference, smiyc_pixel_reference  # noqa: E402

SIDES = ("exact", "meta-ood", "meta-ood original", "smiyc", "smiyc benchmark")
REFERENCE_OF = {"meta-ood": "meta-ood original", "smiyc": "smiyc benchmark"}


class Frames:
    """The seeded frames, made on iteration; `seconds` sums the time spent making them."""

    def __init__(self, num, shape):
        self.num, self.shape, self.seconds = num, shape, 0.0

    def __iter__(self):
        for index in range(self.num):
            start = time.perf_counter()
            rng = np.random.default_rng(index)
            draw = rng.random(self.shape, dtype=np.float32)
            label = np.where(draw < 0.05, 1, np.where(draw < 0.10, 255, 0)).astype(np.uint8)
            score = np.where(label == 1, 1 - rng.beta(0.4, 4, self.shape), rng.beta(0.3, 5, self.shape))
            score = score.astype(np.float32)
            self.seconds += time.perf_counter() - start
            yield score, label


def run_side(side, frames):
    """(seconds, {auroc, ap, fpr95}) of one side over `frames`, the time of making them excluded."""
    start = time.perf_counter()
    if side == "meta-ood original":
        auroc, ap, fpr95, _, _ = meta_ood_reference(frames)
        result = {"auroc": auroc, "ap": ap, "fpr95": fpr95}
    elif side == "smiyc benchmark":
        result = smiyc_pixel_reference(frames)
    else:
        protocol = build_protocol(side, 50, 10)
        for score, label in frames:
            protocol.update(score, label)
        result = protocol.compute()
    seconds = time.perf_counter() - start - frames.seconds
    return seconds, {key: float(result[key]) for key in ("auroc", "ap", "fpr95")}


def measure(side, args):
    output = subprocess.run([sys.executable, __file__, "--side", side, "--frames", str(args.frames),
                             "--height", str(args.height), "--width", str(args.width)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def main(args):
    if args.side:
        idle_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        seconds, metrics = run_side(args.side, Frames(args.frames, (args.height, args.width)))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(dict(seconds=seconds, peak_mib=peak_mib, idle_mib=idle_mib, **metrics)))
        return
    pixels = args.frames * args.height * args.width
    print(f"{args.frames} frames of {args.height} x {args.width} = {pixels:,} pixels")
    print(f"| side | seconds | peak RSS MiB (before the work) | AUROC | AP | FPR95 |\n|---|---|---|---|---|---|")
    results = {}
    for side in SIDES:
        r = results[side] = measure(side, args)
        print(f"| {side} | {r['seconds']:.2f} | {r['peak_mib']:.0f} ({r['idle_mib']:.0f}) | {r['auroc']:.6f} | "
              f"{r['ap']:.6f} | {r['fpr95']:.6f} |", flush=True)
    for ours, reference in REFERENCE_OF.items():
        a, b = results[ours], results[reference]
        difference = max(abs(a[key] - b[key]) for key in ("auroc", "ap", "fpr95"))
        print(f"{ours}: {b['seconds'] / a['seconds']:.1f}x faster than the {reference}, "
              f"{b['peak_mib'] / a['peak_mib']:.1f}x less peak memory; largest metric difference {difference:.1e}")


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames to evaluate")
    parser.add_argument("--height", type=int, default=1024, help="frame height")
    parser.add_argument("--width", type=int, default=2048, help="frame width")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
