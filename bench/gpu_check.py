"""Every CUDA path of meta-ood in one run, at most about 5 minutes on one GPU: one table (`make gpu-check`).

    python bench/gpu_check.py [--data_root DIR]      on a CUDA machine
    python bench/gpu_check.py --smoke                the same paths on the CPU, tiny world and small model

The paths, each as a user runs it (the entry scripts' own main functions, in this process, so that the
peak device memory is measurable), on the full-resolution demo world (written first, about a minute,
unless --data_root names one):
  training        ood_training.py, one epoch with --amp off and --amp on (WideResNet38, random weights),
                  and the images/s of both at crop 480, batch 8 (bench/training_throughput.py's step);
  torchrun        ood_training.py under `torchrun --nproc_per_node <GPUs>`, and an all_reduce in an NCCL
                  process group (a group of one where there is one GPU);
  -prepare        meta_classification.py -prepare with 2 writer processes (pinned-memory loader, softmax
                  and entropy on the device), then -segment;
  evaluation      evaluation.py -pixel;
  OODMC           meta_classification.py -moment -SVM and evaluation.py -moment (moment state on the
                  device), and moment_features of one 1024x2048 image at 16 and 128 samples with the
                  prefix reused, and at 16 with full passes;
  inference       WideResNet38 at 1024x2048 in float32 and AMP: ms per image, and the largest batch that
                  fits (doubling from 1 up to 8).
It stops at the first path that fails, prints the table so far and `gpu-check FAILED at <path>: <error>`,
and exits 1. Without CUDA (and without --smoke) it says so in one line and exits 0. tests/test_gpu_check.py
runs --smoke, so that the script itself never rots.
"""
import argparse
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import config  # noqa: E402
import evaluation  # noqa: E402
import meta_classification  # noqa: E402
import ood_training  # noqa: E402
from bench.training_throughput import images_per_second  # noqa: E402
from preparation.make_cropped_coco import make_cropped_coco  # noqa: E402
from preparation.make_demo_world import make_demo_world  # noqa: E402
from preparation.prepare_cityscapes import prepare_cityscapes  # noqa: E402
from preparation.prepare_coco_segmentation import prepare_coco_segmentation  # noqa: E402
from preparation.prepare_lost_and_found import prepare_lost_and_found  # noqa: E402
from src.dataset import build_valset  # noqa: E402
from src.model import build_model  # noqa: E402
from src.oodmc.moments import moment_features  # noqa: E402

SMALL, WIDE = "DeepLabV3+_TinyResNet", "DeepLabV3+_WideResNet38"
MIB = 2 ** 20
# what each mode runs: the world, the model of the entry-script paths, training crop and batch, the OODMC
# samples measured, the image of the inference and OODMC measurements, the largest batch tried
MODES = {
    # a batch of 16 at 1024x2048 makes the first convolution's output 2**31 elements, past the 32-bit indexing
    # of some CUDA kernels: batches of full-resolution images stop at 8
    "cuda": dict(world="full", model=WIDE, crop=480, batch=8, steps=10, samples=(16, 128), image=(1024, 2048),
                 max_batch=8, min_area=1000),
    "smoke": dict(world="tiny", model=SMALL, crop=16, batch=2, steps=1, samples=(2, 4), image=(32, 64),
                  max_batch=2, min_area=50),
}


class Device:
    """Peak device memory around a block (0 on the CPU, where it is host memory: see bench/rehearsal.py)."""

    def __init__(self, device):
        self.device = device
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def measured(self, record):
        """Fills record['seconds'] and record['peak_mib'] for the block."""
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        started = time.perf_counter()
        yield
        self.sync()
        record["seconds"] = time.perf_counter() - started
        record["peak_mib"] = torch.cuda.max_memory_allocated(self.device) / MIB if self.cuda else 0.0


def quiet(function, *args):
    """function(*args) with its printing captured (the entry scripts print configs and bars)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return function(*args)


def entry(module, argv):
    """module.main as the command line `argv` would run it."""
    return quiet(module.main, config.parse_config(module.GROUPS, module.get_args_parser().parse_args(argv)))


def make_world(root, mode):
    """The demo world of `mode` under root, prepared as the README says; returns its data root."""
    data = os.path.join(root, "datasets")
    quiet(make_demo_world, data, mode["world"], 0)
    quiet(prepare_cityscapes, Path(data) / "cityscapes")
    quiet(prepare_lost_and_found, Path(data) / "lost_and_found")
    quiet(prepare_coco_segmentation, Path(data) / "COCO" / "2017")
    quiet(make_cropped_coco, Path(data) / "COCO" / "2017", Path(data) / "cropped_coco", mode["min_area"])
    return data


def check_training(ctx, mode, common, rows):
    model = build_model(mode["model"]).to(ctx.device)
    for amp in ((False, True) if ctx.cuda else (False,)):
        record = {"path": f"training {'AMP' if amp else 'float32'}"}
        with ctx.measured(record):
            ood_training_argv = [*common, "-model", mode["model"], "--init_ckpt", "none", "-nepochs", "1",
                                 "-crop", str(mode["crop"]), "--batch_size", "2", "--amp", "on" if amp else "off"]
            entry(ood_training, ood_training_argv)
            record["images/s"] = images_per_second(model, ctx.device, amp, mode["batch"], mode["crop"], mode["steps"])
        rows.append(record)
    if ctx.cuda:
        rows[-1]["note"] = f"AMP / float32 {rows[-1]['images/s'] / rows[-2]['images/s']:.2f}x"
    else:
        rows.append({"path": "training AMP", "note": "skipped: AMP needs CUDA"})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(processes, argv):
    """Run `torchrun --nproc_per_node processes argv`; its stdout, or RuntimeError with its last error line."""
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                          "--master_port", str(free_port()), *argv], cwd=ROOT, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}")
    return run.stdout


def check_torchrun(ctx, mode, common, rows):
    # one process per GPU, as long as each gets a batch of 2 of the world's Cityscapes train images
    images = len(list((Path(common[1]) / "cityscapes" / "leftImg8bit" / "train").glob("*/*_leftImg8bit.png")))
    processes = max(min(torch.cuda.device_count(), images // 2), 1) if ctx.cuda else 1
    record = {"path": f"torchrun x{processes}: ood_training.py"}
    if ctx.cuda:
        separate = [*common[:-1], common[-1] + "_torchrun"]  # its own --io_root
        with ctx.measured(record):
            torchrun(processes, ["ood_training.py", *separate, "-model", SMALL, "--init_ckpt", "none",
                                      "-nepochs", "1", "-crop", str(mode["crop"]), "--batch_size", "2"])
    else:  # seconds of start-up; tests/test_training.py runs it with two GLOO processes
        record["note"] = "skipped in the smoke mode"
    rows.append(record)
    record = {"path": f"torchrun x{processes}: {'NCCL' if ctx.cuda else 'GLOO'} all_reduce"}
    with ctx.measured(record):
        record["note"] = torchrun(processes, [__file__, "--all_reduce"]).strip()
    rows.append(record)


def all_reduce():
    """--all_reduce, run by torchrun: a process group of every rank (NCCL on CUDA, even for one rank)."""
    cuda = torch.cuda.is_available()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world_size)
    value = torch.ones(1, device=device)
    dist.all_reduce(value)
    dist.barrier()
    if value.item() != world_size:
        raise RuntimeError(f"all_reduce of ones gave {value.item()}, not {world_size}")
    if rank == 0:
        print(f"{dist.get_backend()}: sum over {world_size} ranks correct")
    dist.destroy_process_group()


def check_stages(ctx, mode, common, rows):
    evaluated = [*common, "-model", mode["model"], "-val", "LostAndFound", "-epoch", "1", "--num_workers", "2"]
    images = len(build_valset("LostAndFound", os.path.join(common[1], "lost_and_found"), "Static"))
    # -removal and evaluation -segment are CPU work on the segments: the rehearsal measures them
    for path, module, flags in (("-prepare (2 writer processes)", meta_classification, ["-prepare"]),
                                ("-segment", meta_classification, ["-segment"]),
                                ("evaluation -pixel", evaluation, ["-pixel"])):
        record = {"path": path}
        with ctx.measured(record):
            entry(module, [*evaluated, *flags])
        record["s/image"] = record["seconds"] / images
        rows.append(record)
    oodmc = ["--moment_num", str(mode["samples"][0]), "--max_batch_size_for_moment", str(mode["samples"][0]),
             "--SVM_eval_subsize", "1", "--svm_points_num", "20"]
    # evaluation -moment reads the OODMC settings from the SVM's file
    for path, module, flags in (("OODMC -moment -SVM", meta_classification, ["-moment", "-SVM", *oodmc]),
                                ("OODMC evaluation -moment", evaluation, ["-moment"])):
        record = {"path": f"{path}, {mode['samples'][0]} samples"}
        with ctx.measured(record):
            entry(module, [*evaluated, *flags])
        rows.append(record)


def check_oodmc(ctx, mode, rows):
    torch.manual_seed(0)
    model = build_model(WIDE if ctx.cuda else SMALL).to(ctx.device).eval()
    image = torch.randn(3, *mode["image"], device=ctx.device)
    low, high = mode["samples"]
    for samples, reuse in ((low, True), (high, True), (low, False)):
        record = {"path": f"OODMC {samples} samples, {'prefix reused' if reuse else 'full passes'}"}
        with ctx.measured(record):
            moment_features(model, image, num_samples=samples, batch_size=min(samples, mode["max_batch"]), order=4,
                            weight=0.5, source="logits", seed=0, reuse_prefix=reuse, amp=ctx.cuda)
        record["s/image"] = record["seconds"]
        rows.append(record)
    rows[-1]["note"] = f"full / reused {rows[-1]['seconds'] / rows[-3]['seconds']:.2f}x"


def check_inference(ctx, mode, rows):
    torch.manual_seed(0)
    model = build_model(WIDE if ctx.cuda else SMALL).to(ctx.device).eval()
    for amp in ((False, True) if ctx.cuda else (False,)):
        record = {"path": f"{'WideResNet38' if ctx.cuda else 'small model'} inference {'AMP' if amp else 'float32'}"}
        images = torch.randn(1, 3, *mode["image"], device=ctx.device)
        with torch.inference_mode(), torch.autocast(ctx.device.type, dtype=torch.float16, enabled=amp):
            model(images)  # warm-up
            ctx.sync()
            with ctx.measured(record):
                for _ in range(3):
                    model(images)
            record["ms/image"] = 1000 * record["seconds"] / 3
            record["max batch"] = largest_batch(ctx, model, mode)
        rows.append(record)


def largest_batch(ctx, model, mode):
    """The largest power-of-two batch up to mode['max_batch'] whose forward pass fits in device memory."""
    fits, batch = 0, 1
    while batch <= mode["max_batch"]:
        try:
            model(torch.randn(batch, 3, *mode["image"], device=ctx.device))
            ctx.sync()
        except torch.OutOfMemoryError:
            break
        finally:
            if ctx.cuda:
                torch.cuda.empty_cache()
        fits, batch = batch, 2 * batch
    return fits


def table(rows):
    columns = ("seconds", "s/image", "ms/image", "images/s", "peak_mib", "max batch")
    lines = [f"{'path':44s} " + " ".join(f"{c:>9}" for c in columns) + "  note"]
    for r in rows:
        cells = [f"{r[c]:9.2f}" if isinstance(r.get(c), float) else f"{r.get(c, '-'):>9}" for c in columns]
        lines.append(f"{r['path']:44s} " + " ".join(cells) + f"  {r.get('note', '')}")
    return "\n".join(lines)


def run_checks(checks, rows):
    """Run (path, function) in order; at the first failure print the table so far and name the path. Returns
    the exit status."""
    for path, check in checks:
        try:
            check()
        except (Exception, SystemExit) as error:  # the entry scripts stop with SystemExit
            print(table(rows))
            print(f"gpu-check FAILED at {path}: {type(error).__name__}: {error}")
            return 1
    print(table(rows))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the CUDA paths' code on the CPU, tiny world, seconds")
    parser.add_argument("--data_root", help="an existing demo world, prepared (default: write one)")
    parser.add_argument("--io_root", help="where the outputs go (default: a temporary folder)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--all_reduce", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.all_reduce:
        all_reduce()
        return 0
    if not args.smoke and not torch.cuda.is_available():
        print("gpu-check: no CUDA device on this machine, nothing to check (--smoke runs the same code on the CPU)")
        return 0
    mode = MODES["smoke" if args.smoke else "cuda"]
    ctx = Device(torch.device("cpu" if args.smoke else "cuda"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        data = args.data_root or make_world(scratch, mode)
        io_root = args.io_root or os.path.join(scratch, "io")
        common = ["--data_root", data, "--device", ctx.device.type, "--io_root", io_root]
        where = torch.cuda.get_device_name(ctx.device) if ctx.cuda else "CPU (smoke mode)"
        print(f"gpu-check on {where}: {mode['world']} world in {data} ({time.perf_counter() - started:.0f} s)")
        rows = []
        status = run_checks([("training", lambda: check_training(ctx, mode, common, rows)),
                             ("torchrun", lambda: check_torchrun(ctx, mode, common, rows)),
                             ("stages", lambda: check_stages(ctx, mode, common, rows)),
                             ("OODMC moment features", lambda: check_oodmc(ctx, mode, rows)),
                             ("inference", lambda: check_inference(ctx, mode, rows))], rows)
    print(f"gpu-check {'passed' if status == 0 else 'failed'} in {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": where, "status": status, "rows": rows}, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
