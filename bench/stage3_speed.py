"""Seconds per 1024 x 2048 frame of stage 3's measurement (evaluation.py -pixel -segment): the pixel pass of five
scores under every protocol and the component passes, against the same code at an earlier commit, in the same run.

    python bench/stage3_speed.py [--frames 8] [--height 1024 --width 2048] [--rounds 2] [--reference 6cc3c1c]

Writes `--frames` synthetic inference caches with src/cache.py's writer: a network-like softmax (19-class logits
made at 1/8 resolution as bench/cache_size.py makes them, bilinearly upsampled), made less confident on the
obstacles so that their entropy is high; LostAndFound train ids (src/dataset/lost_and_found.py): a road (the
in-distribution id) in the lower part of the frame, obstacles on it (the OoD id), a few non-hazard objects (0),
void elsewhere. Then measures, each side in its own process, the time of src/evaluation/measure.py's `measure()` on
a CheckpointScores source of them with the five scores (SML with class statistics of the frames themselves) and
`--protocol all`, the component metrics at a segment threshold of 0.7 included, at LostAndFound's component sizes:

- today: the code of commit `--reference` (the commit before stage 3 read the float16 softmax as stored), taken
  from git into a temporary folder with the compiled extensions of this checkout: it reads every array of a cache,
  the softmax converted to float32;
- new: this checkout's code, on the same caches;
- new, older caches: this checkout's code on copies of the caches without the arrays the scores need in small
  form (max_prob, pred), as written before they were stored: read_cache computes them from the float16 softmax.

The sides alternate for `--rounds` rounds; each prints its seconds per frame and the load average (os.getloadavg)
after it ran, and the shortest round of each side counts. Every side's results (every protocol's AUROC, AP, FPR95,
curves, counts, thresholds and component metrics) must equal today's exactly, compared as JSON text; else the
script stops with exit status 1. Making the caches is not timed. Not a test: nothing here has a pass mark.
"""
import argparse
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

# src/ is imported inside the functions, never here: each side's process imports its own (PYTHONPATH)
ROOT = Path(__file__).resolve().parents[1]
SIDES = ("today", "new", "new, older caches")
THRESHOLD = 0.7  # the segment threshold of the component metrics at t (evaluation.py's default)
SEGSIZE, INSTSIZE = 50, 10  # LostAndFound's (config.COMPONENT_SIZES)


class Dataset:
    """What measure() and CheckpointScores ask of an evaluation set: its train ids and which frames have labels."""

    def __init__(self, train_id_in, train_id_out):
        self.train_id_in, self.train_id_out = train_id_in, train_id_out

    def has_label(self, i):
        return True


def ellipses(rng, height, width, count, radius, region):
    """(H, W) bool: `count` ellipses of radii in `radius` (pixels) centred in `region` ((H, W) bool)."""
    ys, xs = np.nonzero(region)
    pick = rng.integers(0, len(ys), count)
    y, x = np.ogrid[:height, :width]
    mask = np.zeros((height, width), dtype=bool)
    for cy, cx, ry, rx in zip(ys[pick], xs[pick], *rng.uniform(*radius, (2, count))):
        mask |= ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
    return mask


def make_caches(folder, num_frames, height, width):
    """Write the synthetic caches and the SML class statistics of their frames into `folder`."""
    import torch
    from scipy import ndimage

    from bench.cache_size import network_like_softmax
    from src.cache import cache_arrays, cache_path, write_cache_arrays
    from src.dataset.lost_and_found import LostAndFound
    from src.evaluation.scores import ClassStats

    rng = np.random.default_rng(0)
    stats = ClassStats(19)
    y, x = np.ogrid[:height, :width]
    horizon = int(0.45 * height)
    road = (y >= horizon) & (np.abs(x - width / 2) <= width * (0.15 + 0.35 * (y - horizon) / (height - horizon)))
    for i in range(num_frames):
        _, logits = network_like_softmax(rng, height, width, rng.uniform(10, 15))
        obstacles = ellipses(rng, height, width, 8, (height / 200, height / 25), road)
        others = ellipses(rng, height, width, 3, (height / 100, height / 30), road) & ~obstacles
        # the network is unsure on the obstacles and around them
        confidence = 1 - 0.9 * ndimage.gaussian_filter(obstacles.astype(np.float32), height / 100)
        confidence = np.clip(confidence / confidence.max(), 0.1, 1)
        logits = torch.from_numpy(logits * confidence)
        gt_train = np.full((height, width), LostAndFound.ignore_index, dtype=np.uint8)
        gt_train[road] = LostAndFound.train_id_in
        gt_train[others] = LostAndFound.train_id_non_hazard
        gt_train[obstacles & road] = LostAndFound.train_id_out
        gt_label = np.choose(np.minimum(gt_train, 3), [31, 1, 2, 0]).astype(np.uint8)  # label ids of the train ids
        max_logit, pred = logits.max(0)
        stats.update(max_logit.numpy(), pred.numpy())
        write_cache_arrays(cache_path(folder, i), *cache_arrays(torch.softmax(logits, 0)), max_logit.numpy(),
                           gt_train, gt_label, {"has_label": True, "checkpoint": "synthetic"},
                           torch.logsumexp(logits, 0).numpy())
    with open(os.path.join(folder, "sml.json"), "w") as f:
        json.dump(stats.to_dict(), f)


def without_stored_top(folder, older):
    """Copies of the caches in `folder` without max_prob and pred, as caches written before them, into `older`."""
    import h5py
    import hdf5plugin  # noqa: F401  (reads Blosc2)

    for path in sorted(glob.glob(os.path.join(folder, "*.h5"))):
        copy = os.path.join(older, os.path.basename(path))
        with h5py.File(path, "r") as source, h5py.File(copy, "w") as target:
            for key in source:
                if key not in ("max_prob", "pred"):
                    source.copy(source[key], target, key)
            target.attrs.update(source.attrs)
    shutil.copy(os.path.join(folder, "sml.json"), older)


def reference_tree(commit, folder):
    """The src/ of `commit` in `folder`, with this checkout's compiled extensions; the folder for sys.path."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True)
    if archive.returncode:
        sys.exit(f"cannot take src/ of commit {commit} from git: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    for extension in glob.glob(str(ROOT / "src" / "**" / "*.so"), recursive=True):
        shutil.copy(extension, os.path.join(folder, os.path.relpath(extension, ROOT)))
    return folder


def plain(value):
    """`value` with numpy arrays and scalars as lists and Python numbers, for JSON."""
    if isinstance(value, dict):
        return {str(key): plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_side(cache_dir, out_file):
    """measure() of the caches in `cache_dir` with the `src` first on sys.path (the side's own); writes its results
    as JSON text to `out_file` and prints the seconds it took."""
    from src.dataset.lost_and_found import LostAndFound
    from src.evaluation.component_metrics import ComponentMetrics
    from src.evaluation.measure import measure
    from src.evaluation.protocols import PROTOCOLS
    from src.evaluation.scores import SCORES, ClassStats
    from src.score_source import CheckpointScores

    with open(os.path.join(cache_dir, "sml.json")) as f:
        stats = ClassStats.from_dict(json.load(f))
    paths = sorted(glob.glob(os.path.join(cache_dir, "*.h5")))
    source = CheckpointScores(paths, Dataset(LostAndFound.train_id_in, LostAndFound.train_id_out), None, stats)
    start = time.perf_counter()
    at_t = {source.score_name: ComponentMetrics(THRESHOLD, SEGSIZE, INSTSIZE)}
    results = measure(source, SCORES, PROTOCOLS, SEGSIZE, INSTSIZE, at_threshold=at_t)
    results["component_at_t"] = at_t[source.score_name].compute()
    seconds = time.perf_counter() - start
    with open(out_file, "w") as f:
        json.dump(plain(results), f, sort_keys=True)
    print(json.dumps({"seconds": seconds}))


def timed_side(side, folders, out_file):
    """Seconds of one side in its own process (so that it imports its own src/)."""
    src_root = folders["reference"] if side == "today" else str(ROOT)
    cache_dir = folders["older"] if side == "new, older caches" else folders["caches"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src_root, str(ROOT)])}
    done = subprocess.run([sys.executable, __file__, "--side", cache_dir, out_file], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main(args):
    if args.side:
        run_side(*args.side)
        return
    sys.path.insert(0, str(ROOT))
    from bench.protocols import machine

    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: os.path.join(tmp, name) for name in ("caches", "older", "reference")}
        for folder in folders.values():
            os.makedirs(folder)
        reference_tree(args.reference, folders["reference"])
        start = time.perf_counter()
        make_caches(folders["caches"], args.frames, args.height, args.width)
        without_stored_top(folders["caches"], folders["older"])
        mib = sum(os.path.getsize(p) for p in glob.glob(os.path.join(folders["caches"], "*.h5"))) / 2 ** 20
        print(machine())
        print(f"{args.frames} caches of {args.height} x {args.width} written in {time.perf_counter() - start:.0f} s, "
              f"{mib / args.frames:.1f} MiB each; load average {os.getloadavg()[0]:.2f}; today = commit "
              f"{args.reference}")
        per_frame, differ = {side: [] for side in SIDES}, set()
        for round_ in range(args.rounds):
            for side in SIDES:
                seconds = timed_side(side, folders, os.path.join(tmp, f"{side}.json")) / args.frames
                per_frame[side].append(seconds)
                print(f"round {round_ + 1} {side:>18}: {seconds:.3f} s per frame, load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
            texts = {side: Path(tmp, f"{side}.json").read_text() for side in SIDES}
            differ |= {side for side in SIDES if texts[side] != texts["today"]}
        best = {side: min(seconds) for side, seconds in per_frame.items()}
        print(f"\nseconds per {args.height} x {args.width} frame, five scores, every protocol, pixel and component "
              f"passes (the shortest of {args.rounds} rounds), {args.frames} frames:")
        for side in SIDES:
            print(f"{side:>18}: {best[side]:.3f} s ({best['today'] / best[side]:.2f}x today)")
        print(f"load average at the end {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    if differ:
        sys.exit(f"the results of {', '.join(sorted(differ))} differ from today's")
    print("every result equals today's (compared as JSON text)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="synthetic caches to measure")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2, help="timings of each side; the shortest counts")
    parser.add_argument("--reference", default="6cc3c1c", help="the commit whose code is 'today'")
    parser.add_argument("--side", nargs=2, metavar=("CACHE_DIR", "OUT_FILE"), help=argparse.SUPPRESS)
    main(parser.parse_args())
