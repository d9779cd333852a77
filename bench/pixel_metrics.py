"""Streaming PixelMetrics against sklearn on the same pixels: time, peak memory and agreement.

    python bench/pixel_metrics.py [--pixels 100000000] [--sklearn_pixels N]

Each side runs in its own subprocess so that its peak resident memory (ru_maxrss) is its own. The
pixels come in images of 1024 x 2048 made by a seeded generator (SML-like scores, 5% OoD); making
them is not timed. PixelMetrics sees one image at a time; sklearn needs all pixels at once and runs
roc_curve (AUROC and FPR95 from one sort) plus average_precision_score. With --sklearn_pixels below
--pixels, sklearn's time is scaled up linearly to the full size (an underestimate: its sort is
n log n) and the agreement is not checked.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import auc, average_precision_score, roc_curve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.evaluation.pixel_metrics import PixelMetrics  # noqa: E402

IMAGE_PIXELS = 1024 * 2048


def image(index, num_pixels):
    """Scores and OoD flags of one synthetic image: float32 (N,), bool (N,)."""
    rng = np.random.default_rng(index)
    is_ood = rng.random(num_pixels) < 0.05
    scores = rng.standard_t(4, num_pixels).astype(np.float32)
    scores[is_ood] += 2.0
    return scores, is_ood


def image_sizes(num_pixels):
    full, rest = divmod(num_pixels, IMAGE_PIXELS)
    return [IMAGE_PIXELS] * full + ([rest] if rest else [])


def run_streaming(num_pixels):
    metrics = PixelMetrics()
    seconds = 0.0
    for index, size in enumerate(image_sizes(num_pixels)):
        scores, is_ood = image(index, size)
        start = time.perf_counter()
        metrics.update(scores, is_ood)
        seconds += time.perf_counter() - start
    start = time.perf_counter()
    result = metrics.compute()
    seconds += time.perf_counter() - start
    return seconds, result["auroc"], result["ap"], result["fpr95"]


def run_sklearn(num_pixels):
    scores = np.empty(num_pixels, dtype=np.float32)
    is_ood = np.empty(num_pixels, dtype=bool)
    offset = 0
    for index, size in enumerate(image_sizes(num_pixels)):
        scores[offset:offset + size], is_ood[offset:offset + size] = image(index, size)
        offset += size
    start = time.perf_counter()
    fpr, tpr, _ = roc_curve(is_ood, scores)
    ap = average_precision_score(is_ood, scores)
    seconds = time.perf_counter() - start
    return seconds, auc(fpr, tpr), ap, fpr[np.searchsorted(tpr, 0.95)]


def measure(side, num_pixels):
    """Run one side in a fresh interpreter; returns its seconds, peak RSS in MiB and metrics."""
    output = subprocess.run([sys.executable, __file__, "--side", side, "--pixels", str(num_pixels)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output)


def main(args):
    if args.side:
        idle_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        run = run_streaming if args.side == "streaming" else run_sklearn
        seconds, auroc, ap, fpr95 = run(args.pixels)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(dict(seconds=seconds, peak_mib=peak_mib, idle_mib=idle_mib,
                              auroc=float(auroc), ap=float(ap), fpr95=float(fpr95))))
        return

    sklearn_pixels = args.sklearn_pixels or args.pixels
    ours = measure("streaming", args.pixels)
    ref = measure("sklearn", sklearn_pixels)
    scale = args.pixels / sklearn_pixels
    print(f"{args.pixels:,} pixels in images of {IMAGE_PIXELS:,}; sklearn on {sklearn_pixels:,} pixels")
    print(f"PixelMetrics: {ours['seconds']:8.2f} s   peak RSS {ours['peak_mib']:7.0f} MiB "
          f"({ours['idle_mib']:.0f} MiB before the work)")
    print(f"sklearn:      {ref['seconds']:8.2f} s   peak RSS {ref['peak_mib']:7.0f} MiB "
          f"({ref['idle_mib']:.0f} MiB before the work)")
    if scale != 1:
        print(f"sklearn scaled linearly to {args.pixels:,} pixels: {ref['seconds'] * scale:.2f} s")
    print(f"speed-up: {ref['seconds'] * scale / ours['seconds']:.1f}x")
    if scale == 1:
        for name in ("auroc", "ap", "fpr95"):
            print(f"{name:6s} PixelMetrics {ours[name]:.6f}  sklearn {ref[name]:.6f}  "
                  f"difference {ours[name] - ref[name]:+.1e}")


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pixels", type=int, default=100_000_000, help="pixels to evaluate")
    parser.add_argument("--sklearn_pixels", type=int, default=0,
                        help="run sklearn on fewer pixels (0: the same number) and scale its time")
    parser.add_argument("--side", choices=("streaming", "sklearn"), help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    main(get_args_parser().parse_args())
