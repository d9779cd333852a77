"""Stage 2 and OODMC under torchrun: two GLOO processes on the CPU give exactly the outputs of one."""
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import src.cache  # noqa: F401  (registers the Blosc2 filter the caches are compressed with)
from src.distributed import Dist, shard


REPO = Path(__file__).resolve().parents[1]
MODEL = "DeepLabV3+_TinyResNet"
OODMC = ["--moment_num", "4", "--max_batch_size_for_moment", "3", "--svm_points_num", "40", "--SVM_eval_subsize", "1"]


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoints):
    return tiny_checkpoints[0]


def run(script, world, io_root, checkpoint, *argv, processes=1):
    flags = ["--data_root", str(world), "--io_root", str(io_root), "-model", MODEL, "--init_ckpt", str(checkpoint),
             "-epoch", "0", "--device", "cpu", "--num_workers", "0", *argv]
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", "29544"] \
        if processes > 1 else []
    result = subprocess.run([sys.executable, *launcher, script, *flags], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def run_dir(io_root):
    return io_root / "LostAndFound" / f"{MODEL}_baseline"


def test_two_processes_give_the_outputs_of_one(prepared_world, checkpoint, tmp_path):
    for name, processes in (("one", 1), ("two", 2)):
        run("meta_classification.py", prepared_world, tmp_path / name, checkpoint, "-prepare", "-segment",
            "-moment", "-SVM", *OODMC, processes=processes)
        run("evaluation.py", prepared_world, tmp_path / name, checkpoint, "-moment", processes=processes)
    one, two = run_dir(tmp_path / "one"), run_dir(tmp_path / "two")
    caches = sorted(p.name for p in (one / "cache").iterdir())
    assert caches == sorted(p.name for p in (two / "cache").iterdir()) and len(caches) == 3
    for name in caches:
        with h5py.File(one / "cache" / name) as a, h5py.File(two / "cache" / name) as b:
            for key in ("probs", "max_logit", "gt_train", "gt_label"):
                assert np.array_equal(a[key][...], b[key][...]), (name, key)
    for sub, suffix in (("segments_t0.7", ".npz"), ("oodmc/train", ".npz"), ("oodmc/scores", ".npy")):
        files = sorted(p.name for p in (one / sub).iterdir() if p.suffix == suffix)
        assert files and files == sorted(p.name for p in (two / sub).iterdir() if p.suffix == suffix), sub
        for name in files:
            a, b = np.load(one / sub / name), np.load(two / sub / name)
            for key in (a.files if suffix == ".npz" else [None]):
                assert np.array_equal(a[key] if key else a, b[key] if key else b), (sub, name, key)


def test_shards_cover_every_item_exactly_once():
    items = list(range(11))
    shards = [shard(items, Dist(rank, 3, torch.device("cpu"))) for rank in range(3)]
    assert sorted(sum(shards, [])) == items
    assert [len(s) for s in shards] == [4, 4, 3]
