import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import config
import ood_training
from src import distributed
from src.errors import UserError
from src.model import build_model

REPO = Path(__file__).resolve().parents[1]
TINY = ["-model", "DeepLabV3+_TinyResNet", "-crop", "16", "--batch_size", "2", "-lr", "1e-3", "--num_workers", "0",
        "--ood_subsampling_factor", "0.5", "--device", "cpu"]


def make_cfg(world, io_root, *argv):
    args = ood_training.get_args_parser().parse_args(
        ["--data_root", str(world), "--io_root", str(io_root), *TINY, *argv])
    return config.parse_config(ood_training.GROUPS, args)


@pytest.fixture(scope="module")
def baseline(tiny_checkpoints):
    """A baseline checkpoint trained from scratch on the tiny world's Cityscapes (TRAINSET Cityscapes)."""
    return tiny_checkpoints[0]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_checkpoint_holds_everything_to_continue(prepared_world, baseline, tmp_path):
    ood_training.main(make_cfg(prepared_world, tmp_path, "--init_ckpt", str(baseline), "-nepochs", "1"))
    state = torch.load(tmp_path / "weights" / "entropy" / "DeepLabV3+_TinyResNet_epoch_1_alpha_0.9.pth",
                       weights_only=True)
    assert state["epoch"] == 1 and isinstance(state["loss"], float)
    assert not any(k.startswith("module.") for k in state["state_dict"])
    assert state["optimizer_state_dict"]["state"], "Adam state was not saved"
    assert state["config"]["train"]["TRAINSET"] == "Cityscapes+COCO"
    assert not list((tmp_path / "weights" / "entropy").glob(".*tmp*")), "a temporary file was left behind"


def test_resume_equals_an_uninterrupted_run(prepared_world, baseline, tmp_path):
    common = ("--init_ckpt", str(baseline), "--embedding_img_interval", "2")
    straight = ood_training.main(make_cfg(prepared_world, tmp_path / "a", *common, "-nepochs", "2"))
    ood_training.main(make_cfg(prepared_world, tmp_path / "b", *common, "-nepochs", "1"))
    resumed = ood_training.main(make_cfg(prepared_world, tmp_path / "b", *common, "-epoch", "1", "-nepochs", "2"))
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    name = "DeepLabV3+_TinyResNet_epoch_2_alpha_0.9.pth"
    a = torch.load(tmp_path / "a" / "weights" / "entropy" / name, weights_only=True)["optimizer_state_dict"]
    b = torch.load(tmp_path / "b" / "weights" / "entropy" / name, weights_only=True)["optimizer_state_dict"]
    for index, state in a["state"].items():
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key], b["state"][index][key])


def test_divergence_stops_with_a_message_and_keeps_the_last_checkpoint(prepared_world, baseline, tmp_path):
    common = ("--init_ckpt", str(baseline), "--optim_target", "logit")
    ood_training.main(make_cfg(prepared_world, tmp_path, *common, "-nepochs", "1"))
    last = tmp_path / "weights" / "logit" / "DeepLabV3+_TinyResNet_epoch_1_alpha_0.9.pth"
    before = digest(last)
    with pytest.raises(ood_training.TrainingDiverged, match=r"epoch 2, iteration 0: .*largest \|logit\|"):
        ood_training.main(make_cfg(prepared_world, tmp_path, *common, "-epoch", "1", "-nepochs", "2",
                                   "--logit_limit", "1e-3"))
    assert digest(last) == before
    assert not (last.parent / "DeepLabV3+_TinyResNet_epoch_2_alpha_0.9.pth").exists()


class RecordingModel(torch.nn.Module):
    """Logits from a 1x1 convolution; remembers the first pixel of every batch it sees."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 19, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append(float(x[0, 0, 0, 0]))
        return self.conv(x)


@pytest.mark.parametrize("k", [1, 3])
def test_embedding_batches_replace_exactly_every_kth_batch(prepared_world, tmp_path, k):
    cfg = make_cfg(prepared_world, tmp_path, "--embedding_img_interval", str(k))
    loader = [(torch.full((2, 3, 4, 4), float(b)), torch.zeros(2, 4, 4, dtype=torch.long)) for b in range(7)]
    embeddings = iter([(torch.full((2, 3, 4, 4), -1.0), torch.full((2, 4, 4), 254))] * 7)
    model = RecordingModel()
    optimizer = torch.optim.Adam(model.parameters())
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    ctx = distributed.Dist(0, 1, torch.device("cpu"))
    ood_training.train_one_epoch(model, optimizer, scaler, torch.autocast("cpu", enabled=False), loader, embeddings,
                                 cfg, ctx, epoch=0)
    assert model.seen == [-1.0 if b % k == 0 else float(b) for b in range(7)]


def test_embedding_batches_are_full_and_a_set_without_one_is_refused(prepared_world, tmp_path):
    # a last batch of one image breaks BatchNorm in training mode: every batch of the endless stream is full
    cfg = make_cfg(prepared_world, tmp_path, "--embedding_img_interval", "1")
    samples = len(ood_training.CsCocoEmbedding(cfg.paths.cs_coco_embedding, None))
    size = next(b for b in range(2, samples) if samples % b == 1)
    cfg = make_cfg(prepared_world, tmp_path, "--embedding_img_interval", "1", "--batch_size", str(size))
    stream = ood_training.embedding_batches(cfg, distributed.Dist(0, 1, torch.device("cpu")), epoch=0)
    assert [len(next(stream)[0]) for _ in range(3 * (samples // size) + 1)] == [size] * (3 * (samples // size) + 1)
    cfg = make_cfg(prepared_world, tmp_path, "--embedding_img_interval", "1", "--batch_size", str(samples + 1))
    stream = ood_training.embedding_batches(cfg, distributed.Dist(0, 1, torch.device("cpu")), epoch=0)
    with pytest.raises(UserError, match=f"{samples} cs_coco_embedding samples make no full batch"):
        next(stream)


def test_non_finite_loss_stops(prepared_world, tmp_path):
    cfg = make_cfg(prepared_world, tmp_path)
    model = RecordingModel()
    with torch.no_grad():
        model.conv.bias[3] = float("nan")
    loader = [(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))]
    with pytest.raises(ood_training.TrainingDiverged, match="epoch 1, iteration 0: loss nan"):
        ood_training.train_one_epoch(model, torch.optim.Adam(model.parameters()),
                                     torch.amp.GradScaler("cpu", enabled=False), torch.autocast("cpu", enabled=False),
                                     loader, None, cfg, distributed.Dist(0, 1, torch.device("cpu")), epoch=0)


def test_resuming_a_missing_epoch_names_the_file(prepared_world, tmp_path):
    with pytest.raises(Exception, match="epoch_3_alpha_0.9.pth"):
        ood_training.main(make_cfg(prepared_world, tmp_path, "-epoch", "3", "-nepochs", "4"))


DDP_WORKER = """
import sys, torch
sys.path.insert(0, {repo!r})
import config, ood_training
from src import distributed
from src.errors import UserError
args = ood_training.get_args_parser().parse_args(sys.argv[1:])
model = ood_training.main(config.parse_config(ood_training.GROUPS, args))
torch.save(model.state_dict(), {out!r} + "/rank%d.pt" % int(__import__("os").environ["RANK"]))
"""


def test_two_process_torchrun_trains_identical_replicas(prepared_world, baseline, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER.format(repo=str(REPO), out=str(tmp_path)))
    argv = ["--data_root", str(prepared_world), "--io_root", str(tmp_path / "io"), *TINY, "--init_ckpt",
            str(baseline), "-nepochs", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29533", str(worker), *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    fresh = build_model("DeepLabV3+_TinyResNet")
    # Weights are identical; BatchNorm running statistics are each rank's own (DDP broadcasts rank 0's at
    # every forward, and the checkpoint holds rank 0's).
    for key, _ in fresh.named_parameters():
        assert torch.equal(rank0[key], rank1[key]), key
    fresh = fresh.state_dict()
    assert any(not torch.equal(rank0[k], fresh[k]) for k in rank0 if rank0[k].is_floating_point())
    written = list((tmp_path / "io" / "weights" / "entropy").iterdir())
    assert [p.name for p in written] == ["DeepLabV3+_TinyResNet_epoch_1_alpha_0.9.pth"]
