"""Speed of the compiled MetaSeg segment metrics, against the NumPy reference of the tests, one core.

Synthetic LostAndFound-like images: a 19-class softmax that is confident on smooth class regions and
close to uniform on blobs covering about 10% of the pixels (the OoD mask is its normalised entropy
>= 0.7, as in segment search), the top quarter void, ground-truth OoD on part of the blobs.
Prints the time per image of both metric functions together (the compiled code this targets:
<= 0.3 s at 1024x2048) on the float32 probs and on their float16 copy (what the segment search passes
from the inference cache, read without a float32 copy), of the entropy mask, and of the whole
segment_search, then the ratio to the NumPy reference, which is too slow for the full size and is timed
at the smallest size only.

With --original DIR, DIR holds the published MetaSeg module compiled (`metrics*.so` built from
src/metaseg/metrics.pyx of the original meta-ood code with its metrics_setup.py): both metric functions
are also timed at 1024x2048 with the original (one repeat: it takes seconds), the outputs compared, and
the ratio printed (target: >= 100x).

    python bench/metaseg_speed.py [--original DIR]
"""
import argparse
import glob
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from src.metaseg import metrics as compiled  # noqa: E402
from src.metaseg.metrics import compute_metrics_components, compute_metrics_mask  # noqa: E402
from src.metaseg.segment_search import entropy_mask, segment_search  # noqa: E402
from tests.metaseg_reference import reference_gt_metrics, reference_segment_metrics  # noqa: E402

NCLASSES, OOD, THRESHOLD = 19, 2, 0.7
LAYOUT = (128, 256)  # one random scene, drawn at this resolution and zoomed to every benchmarked size


def synthetic_image(h, w, seed=0):
    """probs (19, h, w) float32, gt_train and gt_label (h, w) uint8 of the same scene at every size."""
    rng = np.random.default_rng(seed)
    zoom = (h / LAYOUT[0], w / LAYOUT[1])
    classes = ndimage.zoom(rng.normal(size=(NCLASSES, *LAYOUT)), (1, *zoom), order=1)
    blob_noise = ndimage.zoom(ndimage.gaussian_filter(rng.normal(size=LAYOUT), 1.2), zoom, order=1)
    blobs = blob_noise > np.quantile(blob_noise, 0.9)
    # confident (sharp) logits outside the blobs, nearly flat inside, with pixel noise for ragged edges
    sharpness = np.where(blobs, 0.3, 10.0).astype(np.float32)
    pixel_noise = 0.3 * rng.normal(size=(NCLASSES, h, w)).astype(np.float32)
    logits = classes.astype(np.float32) * sharpness + pixel_noise
    logits -= logits.max(axis=0)
    probs = np.exp(logits)
    probs /= probs.sum(axis=0)
    gt_train = np.ones((h, w), dtype=np.uint8)
    gt_train[blob_noise > np.quantile(blob_noise, 0.95)] = OOD
    gt_train[: h // 4] = 255
    gt_label = np.where(gt_train == OOD, 7, 1).astype(np.uint8)
    return probs, gt_train, gt_label


def seconds(fn, repeats):
    """Best wall time of `repeats` calls of fn()."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def load_original(folder):
    """The published `metrics` module compiled in `folder`."""
    found = glob.glob(os.path.join(folder, "metrics*.so"))
    if not found:
        raise SystemExit(f"no compiled metrics*.so in {folder}, --original; build the published "
                         f"src/metaseg/metrics.pyx there with its metrics_setup.py build_ext --inplace")
    spec = importlib.util.spec_from_file_location("metrics", found[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare_with_original(original):
    """Time the original and ours at 1024x2048 in this run; the largest metric difference between them."""
    probs, gt_train, gt_label = synthetic_image(1024, 2048)
    mask = entropy_mask(probs, THRESHOLD)

    def both(module):
        return (module.compute_metrics_components(probs, gt_train, mask, OOD),
                module.compute_metrics_mask(probs, mask, gt_train, gt_label, OOD))

    t_original = seconds(lambda: both(original), 1)
    t_ours = seconds(lambda: both(compiled), 3)
    difference = 0.0
    for (theirs, _), (ours, _) in zip(both(original), both(compiled)):
        for key in theirs:
            difference = max(difference, float(np.max(np.abs(np.subtract(theirs[key], ours[key])), initial=0)))
    print(f"original MetaSeg code at 1024x2048: {t_original:.2f} s vs ours {t_ours:.3f} s, ratio "
          f"{t_original / t_ours:.0f}x (target >= 100x); largest metric difference {difference:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", help="folder holding the published MetaSeg metrics module, compiled")
    args = parser.parse_args()
    sizes = [(512, 1024), (1024, 2048)]
    reference_size = (256, 512)
    print(f"MetaSeg segment metrics, one core, {NCLASSES} classes, threshold {THRESHOLD}; best of 3, seconds per image")
    print(f"{'size':>10} {'OoD px':>7} {'segments':>8} {'gt comps':>8} {'metrics':>8} {'float16':>8} {'entropy':>8} "
          f"{'search':>8}")
    for h, w in sizes:
        probs, gt_train, gt_label = synthetic_image(h, w)
        mask = entropy_mask(probs, THRESHOLD)
        metrics, _ = compute_metrics_components(probs, gt_train, mask, OOD)
        gt_metrics, _ = compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)
        t_metrics = seconds(lambda: (compute_metrics_components(probs, gt_train, mask, OOD),
                                     compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)), 3)
        probs16 = probs.astype(np.float16)
        t_float16 = seconds(lambda: (compute_metrics_components(probs16, gt_train, mask, OOD),
                                     compute_metrics_mask(probs16, mask, gt_train, gt_label, OOD)), 3)
        t_entropy = seconds(lambda: entropy_mask(probs, THRESHOLD), 3)
        t_search = seconds(lambda: segment_search(probs, gt_train, gt_label, THRESHOLD, OOD), 3)
        print(f"{h:>4}x{w:<5} {mask.mean():>7.1%} {len(metrics['S']):>8} {len(gt_metrics['S']):>8} "
              f"{t_metrics:>8.3f} {t_float16:>8.3f} {t_entropy:>8.3f} {t_search:>8.3f}")

    h, w = reference_size
    probs, gt_train, gt_label = synthetic_image(h, w)
    mask = entropy_mask(probs, THRESHOLD)
    t_compiled = seconds(lambda: (compute_metrics_components(probs, gt_train, mask, OOD),
                                  compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)), 3)
    t_reference = seconds(lambda: (reference_segment_metrics(probs, gt_train, mask, OOD),
                                   reference_gt_metrics(probs, mask, gt_train, gt_label, OOD)), 1)
    print(f"NumPy reference (tests/metaseg_reference.py), timed at {h}x{w} only (too slow at full size): "
          f"{t_reference:.2f} s vs compiled {t_compiled:.4f} s, ratio {t_reference / t_compiled:.0f}x")
    if args.original:
        compare_with_original(load_original(args.original))


if __name__ == "__main__":
    main()
