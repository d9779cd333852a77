"""Size, speed and precision of the stage-2 inference cache (src/cache.write_cache) per 1024 x 2048 image.

    python bench/cache_size.py [--images 3] [--height 1024] [--width 2048]

The maps are network-like: 19-class logits made at 1/8 resolution (smooth random fields with a few classes
dominant, scaled by 10 to 15, so interiors are confident and class borders uncertain), bilinearly upsampled
to full resolution as the networks do, then a softmax. `uncertain` is the share of pixels whose top class
has p < 0.9: less confident maps compress worse. For each map it prints the cache file's MiB against the
original's float32 probabilities (152 MiB per image), the write and read time, and the largest error of the
normalised entropy in the cache (kept in float32) and of the max softmax (from the float16 probs)
against the float32 softmax. The original's layout
(uncompressed float32 HDF5) is written and read in the same run as the reference. Making the maps is not
timed.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.cache import read_cache, write_cache  # noqa: E402
from src.evaluation.scores import normalized_entropy  # noqa: E402

NUM_CLASSES = 19
MIB = 2 ** 20
# class frequencies like a street scene: road, building, vegetation, sky, car, sidewalk dominate
DOMINANT = {0: 1.0, 2: 0.9, 8: 0.8, 10: 0.6, 13: 0.5, 1: 0.4}


def network_like_softmax(rng, height, width, scale):
    """(probs (C, H, W) float32, logits (C, H, W) float32) of one synthetic image."""
    fields = rng.standard_normal((NUM_CLASSES, height // 8, width // 8))
    fields = ndimage.gaussian_filter(fields, sigma=(0, 4, 4))
    fields /= fields.std(axis=(1, 2), keepdims=True)
    bias = np.full(NUM_CLASSES, -1.0)
    bias[list(DOMINANT)] = list(DOMINANT.values())
    low = torch.from_numpy((scale * (fields + bias[:, None, None])).astype(np.float32))
    logits = torch.nn.functional.interpolate(low[None], size=(height, width), mode="bilinear", align_corners=True)[0]
    return torch.softmax(logits, 0).numpy(), logits.numpy()


def write_original(path, probs, gt_train, gt_label):
    """The original's layout: float32 probabilities and the labels, uncompressed."""
    with h5py.File(path, "w") as f:
        f.create_dataset("probabilities", data=probs)
        f.create_dataset("ground_truths", data=gt_train)
        f.create_dataset("label_ids", data=gt_label)


def read_original(path):
    with h5py.File(path, "r") as f:
        return {key: f[key][...] for key in f}


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main(args):
    rng = np.random.default_rng(0)
    reference_mib = NUM_CLASSES * 1024 * 2048 * 4 / MIB
    print(f"cache of {args.height} x {args.width} network-like softmax maps (19 classes); the original stores "
          f"{reference_mib:.0f} MiB of float32 probabilities per 1024 x 2048 image")
    print(f"{'scale':>6} {'uncertain':>9} {'cache MiB':>10} {'x smaller':>10} {'write s':>8} {'read s':>7} | "
          f"{'original MiB':>12} {'write s':>8} {'read s':>7} | {'max |entropy error|':>19} {'max |max-softmax error|':>23}")
    per_image = args.height * args.width / (1024 * 2048)
    sizes = []
    with tempfile.TemporaryDirectory() as folder:
        for scale in np.linspace(10, 15, args.images):
            probs, logits = network_like_softmax(rng, args.height, args.width, scale)
            max_logit = logits.max(axis=0)
            gt_train = logits.argmax(axis=0).astype(np.uint8)
            gt_label = gt_train + np.uint8(7)
            attrs = {"image_path": "x.png", "frame_name": "x", "has_label": True, "checkpoint": "x", "model": "x"}
            ours, original = os.path.join(folder, "ours.h5"), os.path.join(folder, "original.h5")
            _, write_s = timed(write_cache, ours, probs, max_logit, gt_train, gt_label, attrs)
            cache, read_s = timed(read_cache, ours)
            _, original_write_s = timed(write_original, original, probs, gt_train, gt_label)
            _, original_read_s = timed(read_original, original)
            mib = os.path.getsize(ours) / MIB / per_image
            original_mib = os.path.getsize(original) / MIB / per_image
            error = np.abs(cache["entropy"] - normalized_entropy(probs)).max()
            softmax_error = np.abs(cache["probs"].max(0) - probs.max(0)).max()
            uncertain = (probs.max(axis=0) < 0.9).mean()
            sizes.append(mib)
            print(f"{scale:6.1f} {uncertain:9.1%} {mib:10.1f} {reference_mib / mib:10.1f} {write_s:8.2f} "
                  f"{read_s:7.2f} | {original_mib:12.1f} {original_write_s:8.2f} {original_read_s:7.2f} | "
                  f"{error:19.2e} {softmax_error:23.2e}")
    print(f"largest cache: {max(sizes):.1f} MiB per 1024 x 2048 image = {max(sizes) / reference_mib:.2f} of the "
          f"original's {reference_mib:.0f} MiB (target: at most 0.25)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="maps to measure, scales spread over 10..15")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    main(parser.parse_args())
