"""Where and how a run executes: device, mixed precision, seeding, worker processes, host memory."""
import ctypes
import multiprocessing
import random

import numpy as np
import torch

from tqdm import tqdm

from src.errors import UserError, ignore_interrupt


def resolve_device(name):
    """torch.device for --device: auto picks CUDA when available, else CPU. On CUDA it turns on cuDNN's
    autotuning."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise UserError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {name} asks for CUDA, but no CUDA device is available; use --device cpu")
    if device.type == "cuda":
        # a run feeds the network few input sizes (the training crop, a set's image sizes), so each size's
        # autotuning (a few seconds at most) pays off over the images of that size
        torch.backends.cudnn.benchmark = True
    return device


def use_amp(setting, device):
    """Whether --amp (auto/on/off) enables float16 autocast on `device`."""
    if setting == "on" and device.type != "cuda":
        raise UserError("--amp on needs a CUDA device; use --amp off or auto on CPU")
    return device.type == "cuda" and setting != "off"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_jobs(function, jobs, workers, bar):
    """function(job) for every job, in `workers` processes (none: in this one), with a tqdm bar of settings `bar`."""
    if workers == 0:
        for job in tqdm(jobs, total=len(jobs), **bar):
            function(job)
        return
    # fork: the workers need numpy and the compiled metrics only, and spawning would re-import torch in each
    with multiprocessing.get_context("fork").Pool(workers, ignore_interrupt) as pool:
        for _ in tqdm(pool.imap_unordered(function, jobs), total=len(jobs), **bar):
            pass


def release_freed_host_memory():
    """Return the heap pages freed so far to the system, where the C library is glibc (a no-op elsewhere).

    glibc keeps freed pages of mid-sized allocations, e.g. a forward pass's temporaries, for later reuse;
    before a large long-lived allocation they would otherwise stay counted on top of it.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)
