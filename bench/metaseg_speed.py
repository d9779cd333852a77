"""Speed of the compiled MetaSeg segment metrics, against the NumPy reference of the tests, one core.

Synthetic LostAndFound-like images: a 19-class softmax that is confident on smooth class regions and
close to uniform on blobs covering about 10% of the pixels (the OoD mask is its normalised entropy
>= 0.7, as in segment search), the top quarter void, ground-truth OoD on part of the blobs.
Prints the time per image of both metric functions together (the compiled code this targets:
<= 0.3 s at 1024x2048), of the entropy mask, and of the whole segment_search, then the ratio to the
NumPy reference, which is too slow for the full size and is timed at the smallest size only.

    python bench/metaseg_speed.py
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

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


def main():
    sizes = [(512, 1024), (1024, 2048)]
    reference_size = (256, 512)
    print(f"MetaSeg segment metrics, one core, {NCLASSES} classes, threshold {THRESHOLD}; best of 3, seconds per image")
    print(f"{'size':>10} {'OoD px':>7} {'segments':>8} {'gt comps':>8} {'metrics':>8} {'entropy':>8} {'search':>8}")
    for h, w in sizes:
        probs, gt_train, gt_label = synthetic_image(h, w)
        mask = entropy_mask(probs, THRESHOLD)
        metrics, _ = compute_metrics_components(probs, gt_train, mask, OOD)
        gt_metrics, _ = compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)
        t_metrics = seconds(lambda: (compute_metrics_components(probs, gt_train, mask, OOD),
                                     compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)), 3)
        t_entropy = seconds(lambda: entropy_mask(probs, THRESHOLD), 3)
        t_search = seconds(lambda: segment_search(probs, gt_train, gt_label, THRESHOLD, OOD), 3)
        print(f"{h:>4}x{w:<5} {mask.mean():>7.1%} {len(metrics['S']):>8} {len(gt_metrics['S']):>8} "
              f"{t_metrics:>8.3f} {t_entropy:>8.3f} {t_search:>8.3f}")

    h, w = reference_size
    probs, gt_train, gt_label = synthetic_image(h, w)
    mask = entropy_mask(probs, THRESHOLD)
    t_compiled = seconds(lambda: (compute_metrics_components(probs, gt_train, mask, OOD),
                                  compute_metrics_mask(probs, mask, gt_train, gt_label, OOD)), 3)
    t_reference = seconds(lambda: (reference_segment_metrics(probs, gt_train, mask, OOD),
                                   reference_gt_metrics(probs, mask, gt_train, gt_label, OOD)), 1)
    print(f"NumPy reference (tests/metaseg_reference.py), timed at {h}x{w} only (too slow at full size): "
          f"{t_reference:.2f} s vs compiled {t_compiled:.4f} s, ratio {t_reference / t_compiled:.0f}x")


if __name__ == "__main__":
    main()
