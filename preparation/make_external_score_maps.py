"""Write example "external" anomaly score maps from an inference cache, in the SegmentMeIfYouCan submission
layout (<out>/<frame>.hdf5, dataset `value`), to try `--scores_from` on a method that is not the project's own.

Kinds: max_softmax (1 - the max softmax probability) and noisy_entropy (the normalised entropy blurred with a
Gaussian of --sigma pixels plus Gaussian noise of std --noise, seeded per frame; a deliberately worse map).
Idempotent: frames whose file exists are skipped.

python preparation/make_external_score_maps.py --cache demo/io/LostAndFound/<run>/cache --kind max_softmax --out DIR
"""
import argparse
import glob
import os
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.cache import read_cache  # noqa: E402
from src.errors import UserError, run_script  # noqa: E402
from src.evaluation.score_maps import score_map_path, write_score_map  # noqa: E402

KINDS = ("max_softmax", "noisy_entropy")


def external_score(cache, kind, index, sigma=1.5, noise=0.05, seed=0):
    """(H, W) float32 score of one frame's cache (dict of read_cache with probs and entropy)."""
    if kind == "max_softmax":
        return 1 - cache["probs"].max(axis=0)
    rng = np.random.default_rng([seed, index])
    blurred = ndimage.gaussian_filter(cache["entropy"].astype(np.float32), sigma)
    return np.clip(blurred + rng.normal(0, noise, blurred.shape), 0, 1).astype(np.float32)


def make_external_score_maps(cache_dir, kind, out_dir, sigma=1.5, noise=0.05, seed=0):
    """Write the maps of every cache file of `cache_dir`; returns (frames found, files written)."""
    paths = sorted(glob.glob(os.path.join(cache_dir, "*.h5")))
    if not paths:
        raise UserError(f"no inference cache files (*.h5) in {cache_dir}; make them with meta_classification.py -prepare")
    written = 0
    for index, path in enumerate(paths):
        cache = read_cache(path, ("probs", "entropy"))
        out = score_map_path(out_dir, cache["frame_name"])
        if os.path.isfile(out):
            continue
        write_score_map(out, external_score(cache, kind, index, sigma, noise, seed))
        written += 1
    return len(paths), written


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="inference cache folder (<io_root>/<VALSET>/<run>/cache)")
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("--out", required=True, help="folder to write <frame>.hdf5 into")
    parser.add_argument("--sigma", type=float, default=1.5, help="noisy_entropy: Gaussian blur in pixels")
    parser.add_argument("--noise", type=float, default=0.05, help="noisy_entropy: std of the added noise")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    found, written = make_external_score_maps(args.cache, args.kind, args.out, args.sigma, args.noise, args.seed)
    print(f"{args.kind}: {found} frames in {args.cache}, {written} score maps written to {args.out}")


if __name__ == "__main__":
    run_script(main)
