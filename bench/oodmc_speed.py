"""Seconds per image of OODMC moment features for DeepLabV3+_WideResNet38: prefix reuse against full passes.

With prefix reuse the deterministic part before the first dropout (mod1-mod5 and the mod2 skip) runs
once per image and only mod6, mod7, ASPP and the decoder run per sample, whose logits are upsampled to
the image a few pixels at a time as the moments take them; the reference runs the whole network per
sample. Both compute the same features up to float32 rounding (same seed, same masks; the difference
is printed). Target: >= 1.6x fewer seconds per image.

WideResNet38 is slow on a CPU, so the CPU run uses few samples (default 8, two batches). The prefix is
paid once per image, so the ratio grows with the number of samples; besides the measured ratio the
script prints the ratio projected to --project-samples (the default moment_num, 128) from the measured
prefix time and per-sample suffix time. On CUDA (when available) it runs again with more samples and
float16 autocast, as the pipeline does there.

    python bench/oodmc_speed.py [--size 256x512] [--samples 8] [--batch-size 4] [--devices cpu cuda]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from src.model import build_model  # noqa: E402
from src.oodmc.moments import moment_features  # noqa: E402
from src.oodmc.sampling import mc_dropout  # noqa: E402

MODEL = "DeepLabV3+_WideResNet38"


def seconds(fn, device, repeats):
    """Best wall time of `repeats` calls of fn() and its last result."""
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


def bench(device, size, samples, batch_size, repeats, project_samples):
    torch.manual_seed(0)
    model = build_model(MODEL).to(device)
    image = torch.randn(3, *size, device=device)
    amp = device.type == "cuda"

    def features(reuse_prefix, num_samples=samples):
        return moment_features(model, image, num_samples=num_samples, batch_size=batch_size, order=4, weight=0.5,
                               source="logits", seed=0, reuse_prefix=reuse_prefix, amp=amp)

    def prefix():
        with torch.no_grad(), mc_dropout(model, 0, device), torch.autocast(device.type, enabled=amp):
            return model.mc_prefix(image[None])

    features(True, num_samples=2)  # warm-up: lazy initialisation, cuDNN autotuning (src/runtime.py turns it on)
    full_s, full = seconds(lambda: features(False), device, repeats)
    reuse_s, reused = seconds(lambda: features(True), device, repeats)
    prefix_s, _ = seconds(prefix, device, repeats)
    difference = ((reused - full).abs().max() / full.abs().max()).item()
    per_sample_full = full_s / samples
    per_sample_suffix = (reuse_s - prefix_s) / samples
    projected = project_samples * per_sample_full / (prefix_s + project_samples * per_sample_suffix)
    print(f"{MODEL} on {device} (autocast {'on' if amp else 'off'}), {size[0]}x{size[1]}, {samples} samples in "
          f"batches of {batch_size}")
    print(f"  full passes     {full_s:8.2f} s/image")
    print(f"  prefix reuse    {reuse_s:8.2f} s/image   (prefix {prefix_s:.2f} s once, suffix "
          f"{per_sample_suffix:.3f} s per sample = {per_sample_suffix / per_sample_full:.0%} of a full pass)")
    print(f"  speed-up        {full_s / reuse_s:8.2f}x measured at {samples} samples, "
          f"{projected:.2f}x projected at {project_samples} samples (target >= 1.6x)")
    print(f"  features, max |reuse - full| / max |full|: {difference:.1e}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x512", help="HxW")
    parser.add_argument("--samples", type=int, default=8, help="MC samples on CPU")
    parser.add_argument("--batch-size", type=int, default=4, help="copies per pass on CPU")
    parser.add_argument("--cuda-samples", type=int, default=64)
    parser.add_argument("--cuda-batch-size", type=int, default=16)
    parser.add_argument("--project-samples", type=int, default=128)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cuda is skipped when unavailable")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if "cpu" in args.devices:
        bench(torch.device("cpu"), size, args.samples, args.batch_size, 1, args.project_samples)
    if "cuda" in args.devices:
        if torch.cuda.is_available():
            bench(torch.device("cuda"), size, args.cuda_samples, args.cuda_batch_size, 3, args.project_samples)
        else:
            print("CUDA: not available, skipped")


if __name__ == "__main__":
    main()
