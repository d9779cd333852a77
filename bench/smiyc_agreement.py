"""Does `--protocol smiyc` give the SegmentMeIfYouCan benchmark's own numbers? Every number, case by case.

    python bench/smiyc_agreement.py --benchmark ../road-anomaly-benchmark --benchmark_python ../smiyc_env/bin/python
    python bench/smiyc_agreement.py ... --demo demo          # also the maps a finished `make demo` exported

The benchmark runs in its own environment (the numpy 1.23 it pins) as a subprocess: its metric classes
(`PixBinaryClass`, then `SegEval-ObstacleTrack` / `SegEval-AnomalyTrack` at the threshold it saved and reads
back) on the same maps and labels; no benchmark code is in this project. Ours is
src/evaluation/protocols.py, fed as evaluation.py feeds it. Cases:

- hand-made: seeded frames with scores in [0, 1], saturated at exact 0.0 / 1.0 (ties of the top threshold
  across frames), negative (logit-like) and far above 1 (energy-like), stored as float16, float32 and float64;
- demo (--demo DIR): the submission maps the demo exported (io/smiyc/<track>, io/external_maps/<map>[_filtered])
  on the frames our dataset scores, with its labels, and each unfiltered map again as float32 values off float16's
  grid; and for each track, our scored frames and labels against
  the benchmark's validation dataset classes on the same files (without their expected frame counts, which
  the demo world does not have).

It prints, per case, the largest absolute difference of each number and exits with status 1 when one exceeds
--tolerance (1e-6). Also numpy 1.23's np.argsort against ours on tie-heavy arrays (the curve's first point).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.dataset import build_valset  # noqa: E402
from src.evaluation.legacy_argsort import argsort_numpy123  # noqa: E402
from src.evaluation.protocols import build_protocol, evaluate_frames  # noqa: E402
from src.external_maps import ExternalMaps  # noqa: E402

SIZES = {"obstacle": (50, 10), "anomaly": (500, 100)}
SEGEVAL = {"obstacle": "SegEval-ObstacleTrack", "anomaly": "SegEval-AnomalyTrack"}
PIXEL_KEYS = {"auroc": "area_ROC", "ap": "area_PRC", "fpr95": "tpr95_fpr", "tpr95_threshold": "tpr95_threshold",
              "f1_threshold": "best_f1_threshold", "best_f1": "best_f1"}

# Runs in the benchmark's environment: argv = job.json, out.json. The job lists the frames (score: .npy or the
# submission .hdf5, read as the benchmark reads it; label: .npy) and the kind of track.
BENCHMARK_SIDE = r'''
import json, os, sys
import numpy as np
job = json.load(open(sys.argv[1]))
os.environ["DIR_OUTPUTS"] = job["outputs"]
from road_anomaly_benchmark.datasets.dataset_io import ChannelLoaderHDF5
from road_anomaly_benchmark.metrics import MetricRegistry

def load(path):
    return np.squeeze(ChannelLoaderHDF5().read_file(path)) if path.endswith(".hdf5") else np.load(path)

out = {}
if job["frames"]:
    pixel = MetricRegistry.get("PixBinaryClass")
    results = [pixel.process_frame(label_pixel_gt=np.load(f["label"]), anomaly_p=load(f["score"]), visualize=False)
               for f in job["frames"]]
    curve = pixel.aggregate(results, method_name="agreement", dataset_name=job["name"])
    pixel.save(curve, method_name="agreement", dataset_name=job["name"])
    out["pixel"] = {k: float(getattr(curve, k)) for k in job["pixel_keys"]}
    seg = MetricRegistry.get(job["segeval"])
    seg.get_thresh_p_from_curve("agreement", job["name"])  # the threshold as the benchmark saves and reads it
    frames = [seg.process_frame(label_pixel_gt=np.load(f["label"]), anomaly_p=load(f["score"]), visualize=False)
              for f in job["frames"]]
    info = seg.aggregate(frames, method_name="agreement", dataset_name=job["name"])
    out["component"] = {k: float(v) for k, v in vars(info).items() if k not in ("method_name", "dataset_name")}
    out["component"]["num_gt"] = float(sum(len(r.sIoU_gt) for r in frames))
    out["component"]["num_pred"] = float(sum(len(r.prec_pred) for r in frames))
if job.get("argsort"):
    out["argsort"] = [np.argsort(np.load(p)).tolist() for p in job["argsort"]]
if job.get("track"):
    from road_anomaly_benchmark.datasets.tracks import DatasetObstacleTrack
    from road_anomaly_benchmark.datasets.tracks_extra import RoadAnomalyByClass
    track = job["track"]
    if track["kind"] == "obstacle":
        cfg = dict(next(c for c in DatasetObstacleTrack.configs if c["name"] == "ObstacleTrack-validation"))
        cfg.pop("expected_length")
        cfg["dir_root"] = track["root"]
        dataset = DatasetObstacleTrack(cfg)
        fids = [fr.fid for fr in dataset.frames]
    else:  # AnomalyTrack-validation: a fixed list of names, read through AnomalyTrack-all's loader
        from road_anomaly_benchmark.datasets.tracks import DatasetAnomalyTrack
        cfg = dict(DatasetAnomalyTrack.configs[0])
        cfg.pop("expected_length")
        cfg["dir_root"] = track["root"]
        dataset = DatasetAnomalyTrack(cfg)
        present = {fr.fid for fr in dataset.frames}
        fids = [fid for fid in RoadAnomalyByClass.FRAME_IDS["validation"] if fid in present]
        out["listed_but_absent"] = [fid for fid in RoadAnomalyByClass.FRAME_IDS["validation"] if fid not in present]
    out["fids"] = fids
    for fid in fids:
        np.save(os.path.join(track["labels"], fid + ".npy"), dataset.get_frame(fid, "label_pixel_gt").label_pixel_gt)
json.dump(out, open(sys.argv[2], "w"))
'''


def run_benchmark(args, job, workdir):
    job = {"outputs": os.path.join(workdir, "outputs"), "pixel_keys": list(PIXEL_KEYS.values()), **job}
    job_path, out_path = os.path.join(workdir, "job.json"), os.path.join(workdir, "out.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    side = os.path.join(workdir, "benchmark_side.py")
    with open(side, "w") as f:
        f.write(BENCHMARK_SIDE)
    env = {**os.environ, "PYTHONPATH": os.path.abspath(args.benchmark), "MPLBACKEND": "agg"}
    done = subprocess.run([args.benchmark_python, side, job_path, out_path], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the benchmark's side failed:\n{done.stderr[-3000:]}")
    with open(out_path) as f:
        return json.load(f)


def ours(frames, kind):
    """Our smiyc numbers of the (score as stored, label) frames, as flat {name: value}."""
    result = evaluate_frames(build_protocol("smiyc", *SIZES[kind]), lambda: frames)
    c = result["component"]
    flat = {key: result[key] for key in PIXEL_KEYS}
    flat.update({"sIoU_gt": c["siou_gt"], "prec_pred": c["ppv"], "f1_mean": c["mean_f1"], "num_gt": c["num_gt"],
                 "num_pred": c["num_pred"]})
    for name, values in (("tp", c["tp"]), ("fn", c["fn"]), ("fp", c["fp"])):
        flat.update({f"{name}_25": values[0], f"{name}_50": values[5], f"{name}_75": values[10],
                     f"{name}_mean": float(np.mean(values))})
    flat.update({f"f1_{t}": c["f1"][i] for t, i in (("25", 0), ("50", 5), ("75", 10))})
    return flat


def compare(args, name, kind, frames, files=None):
    """Run both sides on `frames` ((score, label) as stored; `files`: the submission files of the scores, read by
    the benchmark itself); print and return the largest difference."""
    with tempfile.TemporaryDirectory() as workdir:
        listed = []
        for k, (score, label) in enumerate(frames):
            label_path = os.path.join(workdir, f"label_{k}.npy")
            np.save(label_path, label)
            if files is None:
                score_path = os.path.join(workdir, f"score_{k}.npy")
                np.save(score_path, score)
            else:
                score_path = files[k]
            listed.append({"score": score_path, "label": label_path})
        theirs = run_benchmark(args, {"name": name, "segeval": SEGEVAL[kind], "frames": listed}, workdir)
    mine = ours(frames, kind)
    theirs = {**{k: theirs["pixel"][v] for k, v in PIXEL_KEYS.items()}, **theirs["component"]}
    differences = {}
    for key, value in mine.items():
        a, b = float(value), float(theirs[key])
        differences[key] = 0.0 if (a == b or (np.isnan(a) and np.isnan(b))) else abs(a - b)
    worst = max(differences.values())
    dtypes = sorted({str(score.dtype) for score, _ in frames})
    print(f"| {name} | {len(frames)} | {'/'.join(dtypes)} | {100 * mine['ap']:.2f} / {100 * theirs['ap']:.2f} | "
          f"{mine['f1_threshold']:.6g} / {theirs['f1_threshold']:.6g} | {100 * mine['sIoU_gt']:.2f} / "
          f"{100 * theirs['sIoU_gt']:.2f} | {100 * mine['f1_mean']:.2f} / {100 * theirs['f1_mean']:.2f} | "
          f"{worst:.1e} ({max(differences, key=differences.get)}) |", flush=True)
    if worst > args.tolerance:
        for key, d in differences.items():
            if d > args.tolerance:
                print(f"    {key}: ours {mine[key]!r}, benchmark {theirs[key]!r}")
    return worst


def hand_frames(seed, kind, dtype, shape=(96, 160), num=6):
    """Seeded frames with OoD blobs that score higher: scores of `kind` stored as `dtype`."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(num):
        label = np.zeros(shape, dtype=np.uint8)
        for _ in range(rng.integers(1, 5)):
            r, c = rng.integers(0, shape[0] - 30), rng.integers(0, shape[1] - 30)
            label[r:r + rng.integers(4, 30), c:c + rng.integers(4, 30)] = 1
        label[rng.random(shape) < 0.03] = 255
        label[:6] = 255
        score = np.where(label == 1, 0.3 + 0.7 * rng.random(shape), rng.beta(1, 6, shape))
        if kind == "saturated":  # max softmax-like: exact 0.0 and 1.0 on many pixels of every frame
            score = np.clip(1.5 * score - 0.25, 0, 1)
        elif kind == "logit":
            score = -25 * (1 - score)
        elif kind == "energy":
            score = 500 + 80 * score
        frames.append((score.astype(dtype), label))
    return frames


def demo_cases(demo):
    """(name, kind, dataset, maps folder) of every map folder the demo at `demo` exported."""
    data, io = os.path.join(demo, "datasets"), os.path.join(demo, "io")
    cases = []
    for valset, kind in (("RoadObstacle21", "obstacle"), ("RoadAnomaly21", "anomaly")):
        folder = os.path.join(io, "smiyc", valset)
        if os.path.isdir(folder):
            root = os.path.join(data, "dataset_ObstacleTrack" if kind == "obstacle" else "dataset_AnomalyTrack")
            cases.append((f"demo {valset} export", kind, build_valset(valset, root, None), folder))
    external = os.path.join(io, "external_maps")
    laf = build_valset("LostAndFound", os.path.join(data, "lost_and_found"), "test")
    for name in sorted(os.listdir(external)) if os.path.isdir(external) else []:
        cases.append((f"demo LostAndFound {name}", "obstacle", laf, os.path.join(external, name)))
    return cases


def check_frame_lists(args, demo):
    """Our scored frames and labels of each demo track against the benchmark's validation dataset classes."""
    ok = True
    data = os.path.join(demo, "datasets")
    for valset, kind, folder in (("RoadObstacle21", "obstacle", "dataset_ObstacleTrack"),
                                 ("RoadAnomaly21", "anomaly", "dataset_AnomalyTrack")):
        root = os.path.join(data, folder)
        if not os.path.isdir(root):
            continue
        dataset = build_valset(valset, root, None)
        with tempfile.TemporaryDirectory() as workdir:
            theirs = run_benchmark(args, {"name": valset, "frames": [], "track": {"kind": kind, "root": root,
                                                                                 "labels": workdir}}, workdir)
            scored = [i for i in range(len(dataset)) if dataset.has_label(i)]
            names = [dataset.frame_name(i) for i in scored]
            same_labels = names == theirs["fids"] and all(
                np.array_equal(np.array(dataset.load_target(i, None)), np.load(os.path.join(workdir, f"{n}.npy")))
                for i, n in zip(scored, names))
        absent = theirs.get("listed_but_absent", [])
        print(f"{valset}: we score {len(names)} frames, the benchmark's validation set holds {len(theirs['fids'])} of "
              f"them here{f' (and lists {len(absent)} the demo world does not have)' if absent else ''}; "
              f"frame lists and labels {'identical' if same_labels else 'DIFFER'}")
        ok &= same_labels
    return ok


def main(args):
    print(f"tolerance {args.tolerance:g}; ours / benchmark (road-anomaly-benchmark at {args.benchmark}, "
          f"{args.benchmark_python})\n")
    print("| case | frames | stored as | AP | best-F1 threshold | sIoU | mean F1 | largest difference (number) |")
    print("|---|---|---|---|---|---|---|---|")
    worst = []
    for kind in ("unit", "saturated", "logit", "energy"):
        for dtype in (np.float16, np.float32, np.float64):
            for track in ("obstacle", "anomaly"):
                name = f"hand {kind} {np.dtype(dtype).name} {track}"
                worst.append(compare(args, name, track, hand_frames(len(kind), kind, dtype), None))
    ok = True
    if args.demo:
        for name, kind, dataset, folder in demo_cases(args.demo):
            maps = ExternalMaps(folder, dataset)
            frames = [(score_maps["score"], label) for _, score_maps, label in maps.frames()]
            files = [maps.paths[i] for i in range(len(dataset)) if dataset.has_label(i)]
            worst.append(compare(args, name, kind, frames, files))
            if not name.endswith("_filtered"):
                # the same maps as float32 full-resolution values (a seeded relative jitter of 1e-4 leaves float16's
                # grid): the float32 path on real maps, passed to the benchmark as .npy
                rng = np.random.default_rng(1)
                jittered = [((s * (1 + 1e-4 * rng.standard_normal(s.shape))).astype(np.float32), label)
                            for s, label in frames]
                worst.append(compare(args, f"{name} float32", kind, jittered, None))
        print()
        ok = check_frame_lists(args, args.demo)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as workdir:
        arrays = [np.round(rng.random(n) * 4) / 4 for n in (20, 1000, 200000)]
        paths = [os.path.join(workdir, f"values_{k}.npy") for k in range(len(arrays))]
        for path, values in zip(paths, arrays):
            np.save(path, values)
        theirs = run_benchmark(args, {"name": "argsort", "frames": [], "argsort": paths}, workdir)["argsort"]
    same_order = all(argsort_numpy123(v).tolist() == t for v, t in zip(arrays, theirs))
    print(f"np.argsort of numpy 1.23 on {len(arrays)} tie-heavy arrays: {'identical' if same_order else 'DIFFERS'}")
    print(f"\nlargest difference over {len(worst)} cases: {max(worst):.1e}")
    return 0 if ok and same_order and max(worst) <= args.tolerance else 1


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", required=True, help="a checkout of road-anomaly-benchmark (the folder holding "
                        "road_anomaly_benchmark/)")
    parser.add_argument("--benchmark_python", required=True, help="a python with the benchmark's requirements "
                        "(numpy 1.23, scipy, h5py, easydict, matplotlib, opencv)")
    parser.add_argument("--demo", help="a finished demo folder (with datasets/ and io/): its exported maps too")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="largest allowed difference of any number")
    return parser


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
