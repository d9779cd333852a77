"""Seconds and peak memory of each evaluation protocol's pixel metrics against the code it reproduces, and of
the smiyc component pass against the benchmark's.

    python bench/protocols.py [--frames 100] [--height 1024 --width 2048] [--component_frames 3]

100 frames of 1024 x 2048 (2.1e8 pixels) by default, entropy-like scores in [0, 1] (in-distribution near 0,
OoD near 1), 5% OoD and 5% void pixels, made by a seeded generator; making a frame is not timed. Each side
runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own:

- exact, meta-ood: src/evaluation/protocols.py, one frame at a time (`update`, then `compute`);
- smiyc float16 / float32: the same on the maps stored as float16 (the submission format: a histogram of
  the 65536 bit patterns gives the sorted sample) and as float32 (a histogram of the top 18 bits of each
  value, then a radix sort of only the cells that hold a wanted quantile or edge);
- meta-ood original: the published meta-ood code's pixel metrics as a faithful port (tests/
  protocol_reference.py: np.histogram of each frame, the rescaled pixel lists materialised, sklearn);
- smiyc benchmark float16 / float32: the road-anomaly-benchmark's PixBinaryClass at its newest commit as a
  faithful port (the same module: np.quantile and np.histogram per frame, frames merged by np.argsort, its
  curve code). The port, not the benchmark's package, is timed: it runs in the same interpreter, and
  computes what the benchmark computes (tests/test_protocols.py; bench/smiyc_agreement.py checks ours
  against the benchmark itself).
Components: per frame of a seeded road scene (smooth scores, blob-shaped objects), our smiyc component pass
(`update` of protocols.SmiycProtocol.components()) against the port of the benchmark's default_instancer and
segment_metrics (tests/protocol_reference.py), at the obstacle track's sizes (50 / 10).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.evaluation.protocols import build_protocol  # noqa: E402
from tests.protocol_reference import (benchmark_instances, benchmark_segment_metrics, meta_ood_reference,  # noqa: E402
                                      smiyc_pixel_reference)

SIDES = ("exact", "meta-ood", "meta-ood original", "smiyc float16", "smiyc benchmark float16", "smiyc float32",
         "smiyc benchmark float32")
REFERENCE_OF = {"meta-ood": "meta-ood original", "smiyc float16": "smiyc benchmark float16",
                "smiyc float32": "smiyc benchmark float32"}


class Frames:
    """The seeded frames, made on iteration; `seconds` sums the time spent making them."""

    def __init__(self, num, shape, dtype=np.float32):
        self.num, self.shape, self.dtype, self.seconds = num, shape, dtype, 0.0

    def __iter__(self):
        for index in range(self.num):
            start = time.perf_counter()
            rng = np.random.default_rng(index)
            draw = rng.random(self.shape, dtype=np.float32)
            label = np.where(draw < 0.05, 1, np.where(draw < 0.10, 255, 0)).astype(np.uint8)
            score = np.where(label == 1, 1 - rng.beta(0.4, 4, self.shape), rng.beta(0.3, 5, self.shape))
            score = score.astype(self.dtype)
            self.seconds += time.perf_counter() - start
            yield score, label


def run_side(side, frames):
    """(seconds, {auroc, ap, fpr95}) of one side over `frames`, the time of making them excluded."""
    start = time.perf_counter()
    if side == "meta-ood original":
        auroc, ap, fpr95, _, _ = meta_ood_reference(frames)
        result = {"auroc": auroc, "ap": ap, "fpr95": fpr95}
    elif side.startswith("smiyc benchmark"):
        result = smiyc_pixel_reference(frames)
    else:
        protocol = build_protocol(side.split()[0], 50, 10)
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
        dtype = np.float16 if args.side.endswith("float16") else np.float32
        seconds, metrics = run_side(args.side, Frames(args.frames, (args.height, args.width), dtype))
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(dict(seconds=seconds, peak_mib=peak_mib, idle_mib=idle_mib, **metrics)))
        return
    print(machine())
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
    if args.component_frames:
        ours, port = component_seconds(args.component_frames, (args.height, args.width))
        print(f"smiyc components, {args.component_frames} road scenes of {args.height} x {args.width}: ours "
              f"{ours / args.component_frames:.3f} s per frame, the benchmark's instancer and segment metrics (port) "
              f"{port / args.component_frames:.3f} s: {port / ours:.1f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def machine():
    """One line: the CPU, its cores and the load when the run starts."""
    model = platform.processor() or platform.machine()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return (f"{model}, {os.cpu_count()} cores; numpy {np.__version__}; load average at the start: "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def road_scene(seed, shape):
    """(score float16, label uint8) of a road scene: void above the road, 8 blob objects of 200 to 20000 px,
    a smooth score (noise at 1/32 resolution) that is high on the objects and on a few road patches."""
    rng = np.random.default_rng(seed)
    h, w = shape
    rows, cols = np.ogrid[:h, :w]
    label = np.zeros(shape, dtype=np.uint8)
    label[: h // 3] = 255
    objects = np.zeros(shape, dtype=bool)
    for _ in range(8):
        r, c = rng.integers(h // 3 + 80, h - 80), rng.integers(80, w - 80)
        a, b = rng.uniform(8, 80, 2)
        objects |= ((rows - r) / a) ** 2 + ((cols - c) / b) ** 2 <= 1
    label[objects] = 1
    coarse = rng.random((h // 32 + 1, w // 32 + 1))
    smooth = np.kron(coarse, np.ones((32, 32)))[:h, :w]
    score = 0.6 * smooth ** 4 + 0.4 * objects * (0.6 + 0.4 * rng.random(shape))
    return score.astype(np.float16), label


def component_seconds(num, shape):
    """(ours, the benchmark port's) seconds of the smiyc component pass over `num` road scenes at the protocol's
    threshold; the two must find the same sIoU and PPV."""
    frames = [road_scene(seed, shape) for seed in range(num)]
    protocol = build_protocol("smiyc", 50, 10)
    for score, label in frames:
        protocol.update(score, label)
    components = protocol.components()
    start = time.perf_counter()
    for score, label in frames:
        components.update(score, label)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    siou, ppv = [], []
    for score, label in frames:
        s, p = benchmark_segment_metrics(*benchmark_instances(score, label, components.tau, 50, 10))
        siou.append(s)
        ppv.append(p)
    port = time.perf_counter() - start
    result = components.compute()
    assert abs(result["siou_gt"] - np.concatenate(siou).mean()) < 1e-12, "the two component passes disagree"
    assert abs(result["ppv"] - np.concatenate(ppv).mean()) < 1e-12, "the two component passes disagree"
    return ours, port


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames to evaluate")
    parser.add_argument("--height", type=int, default=1024, help="frame height")
    parser.add_argument("--width", type=int, default=2048, help="frame width")
    parser.add_argument("--component_frames", type=int, default=3, help="road scenes for the component pass (0: none)")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
