"""Peak host memory and time per image of OODMC evaluation (tiny model), extrapolated to 1024x2048.

The measured path is what evaluation does per image: moment_features (MC dropout, streaming moments,
the feature map kept on the device) and decision_map (the SVM score map, the only full-size array
that reaches the host). Every measurement runs in a fresh process: peak resident memory (ru_maxrss)
minus the resident memory just before the call, after a small warm-up run; the time is the best of
two calls. The memory at two image sizes gives a line in the number of pixels, extrapolated to
1024x2048 (the target: <= 1 GiB of host memory); the time is scaled from the larger size by the pixel
count. The default sizes are both large enough for the update's fixed-size work buffers
(UPDATE_CHUNK_BYTES); smaller ones make the line too steep. Since memory does not grow with the number
of samples, the script also measures 1024x2048 directly with a few samples (all samples on CUDA).

On CPU the device is the host, so the feature state (77 + 19 channels of float32 per pixel: 768 MiB
at 1024x2048) and each batch of `batch_size` logit maps count as host memory; the logits stay at the
model's output resolution (1/4 for the small model) and are upsampled a few pixels at a time. On CUDA
they live on the GPU (its peak is printed too) and the host holds little more than the image and the score.

Reference, measured in the same run at the smaller size and scaled by the pixel count: all samples of
the image held on the host and the moments computed from them (the fork's way; it grows with the
number of samples).

    python bench/oodmc_memory.py [--samples 128] [--batch-sizes 1 16] [--sizes 256x512 512x1024] [--device auto]
"""
import argparse
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from src.model import build_model  # noqa: E402
from src.model.deeplab import upsample  # noqa: E402
from src.oodmc.moments import moment_features, num_features  # noqa: E402
from src.oodmc.sampling import mc_dropout, mc_dropout_batches  # noqa: E402
from src.oodmc.svm import decision_map, fit_svm  # noqa: E402
from src.runtime import resolve_device  # noqa: E402

MODEL = "DeepLabV3+_TinyResNet"
FULL_SIZE = (1024, 2048)
ORDER, WEIGHT = 4, 0.5
MIB = 2**20


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def streaming(model, image, classifier, samples, batch_size):
    features = moment_features(model, image, num_samples=samples, batch_size=batch_size, order=ORDER,
                               weight=WEIGHT, source="logits", seed=0)
    return decision_map(classifier, features)


def hold_all_samples(model, image, classifier, samples, batch_size):
    """The reference: every sample of the image stacked on the host, then the moments from the stack,
    class by class so that the temporaries stay small next to the stack."""
    stack, start = None, 0
    with torch.no_grad(), mc_dropout(model, 0, image.device):
        for batch in mc_dropout_batches(model, image, samples, batch_size):
            if stack is None:
                stack = torch.empty(samples, batch.shape[1], *image.shape[-2:])
            stack[start:start + len(batch)] = upsample(batch, image.shape[-2:]).cpu()
            start += len(batch)
            del batch
    num_classes = stack.shape[1]
    features = torch.empty(num_features(num_classes, ORDER), *stack.shape[2:])
    mean_probs = torch.zeros(stack.shape[1:])
    for i in range(len(stack)):
        mean_probs += torch.softmax(stack[i], 0) / len(stack)
    features[0] = (1 - WEIGHT) * -torch.xlogy(mean_probs, mean_probs).sum(0)
    for c in range(num_classes):
        mean = stack[:, c].mean(0)
        centred = stack[:, c] - mean
        features[1 + c] = WEIGHT * mean
        for k in range(2, ORDER + 1):
            features[1 + (k - 1) * num_classes + c] = WEIGHT * (centred ** k).mean(0)
    return decision_map(classifier, features)


def measure(method, size, samples, batch_size, device_name):
    """In a fresh process: (peak host bytes above the start, best seconds of two runs, peak device bytes or None)."""
    torch.manual_seed(0)
    device = resolve_device(device_name)
    model = build_model(MODEL).to(device)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, num_features(19, ORDER)))
    classifier = fit_svm(features, np.arange(200) % 2 == 0, seed=0)
    run = {"streaming": streaming, "hold_all_samples": hold_all_samples}[method]
    run(model, torch.randn(3, 32, 64, device=device), classifier, 4, batch_size)  # warm-up: lazy initialisation
    image = torch.randn(3, *size, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start_bytes = resident_bytes()
    seconds = float("inf")
    for _ in range(2):  # the best of two runs: this machine may be shared
        start = time.perf_counter()
        run(model, image, classifier, samples, batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = min(seconds, time.perf_counter() - start)
    device_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return peak_resident_bytes() - start_bytes, seconds, device_peak


def in_fresh_process(*args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, args)


def extrapolate(points, size):
    """The line through two (pixels, value) points, at size's pixel count."""
    (x0, y0), (x1, y1) = points
    x = size[0] * size[1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def parse_size(text):
    h, w = text.lower().split("x")
    return int(h), int(w)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--sizes", type=parse_size, nargs=2, default=[(256, 512), (512, 1024)], help="two HxW")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"{MODEL}, order {ORDER}, device {device}; host memory: peak above the start of the call")
    print(f"{'method':<18}{'batch':>6}{'samples':>8}{'size':>11}{'host MiB':>10}{'device MiB':>12}{'s/image':>9}")

    def row(method, batch_size, size, samples=args.samples):
        host, seconds, device_peak = in_fresh_process(method, size, samples, batch_size, args.device)
        device_text = "-" if device_peak is None else f"{device_peak / MIB:.0f}"
        print(f"{method:<18}{batch_size:>6}{samples:>8}{f'{size[0]}x{size[1]}':>11}{host / MIB:>10.0f}"
              f"{device_text:>12}{seconds:>9.2f}", flush=True)
        return host, seconds

    extrapolated = {}
    for batch_size in args.batch_sizes:
        points = [(h * w, row("streaming", batch_size, (h, w))) for h, w in args.sizes]
        host = extrapolate([(x, m[0]) for x, m in points], FULL_SIZE)
        # time is close to proportional to the pixels; scaling the larger size is robust to noise
        large_pixels, (_, large_seconds) = points[-1]
        extrapolated[batch_size] = host, large_seconds * FULL_SIZE[0] * FULL_SIZE[1] / large_pixels
    small = args.sizes[0]
    reference = row("hold_all_samples", args.batch_sizes[-1], small)
    if device.type == "cuda":
        measured = {b: row("streaming", b, FULL_SIZE) for b in args.batch_sizes}
    else:
        # memory does not grow with the number of samples: two passes and a bit measure it at full size
        b = min(args.batch_sizes)
        measured = {b: row("streaming", b, FULL_SIZE, samples=2 * b + 1)}

    scale = FULL_SIZE[0] * FULL_SIZE[1] / (small[0] * small[1])
    size_text = f"{FULL_SIZE[0]}x{FULL_SIZE[1]}"
    print(f"\nat {size_text}, {args.samples} samples; target <= 1024 MiB host memory per image")
    for batch_size, (host, seconds) in extrapolated.items():
        print(f"  streaming, batch {batch_size:>2}, extrapolated from the two sizes: {host / MIB:6.0f} MiB host "
              f"({'meets' if host <= 1024 * MIB else 'misses'} the target), {seconds:7.1f} s/image")
    for batch_size, (host, seconds) in measured.items():
        timing = f", {seconds:.1f} s/image" if device.type == "cuda" else ""
        print(f"  streaming, batch {batch_size:>2}, measured at {size_text}: {host / MIB:6.0f} MiB host "
              f"({'meets' if host <= 1024 * MIB else 'misses'} the target){timing}")
    reference_host = reference[0] * scale
    print(f"  reference (all samples held on the host), scaled by the pixel count from {small[0]}x{small[1]}: "
          f"{reference_host / MIB:6.0f} MiB host, {reference[1] * scale:7.1f} s/image")
    best = min(host for host, _ in measured.values())
    print(f"  reference / streaming (measured) host memory: {reference_host / best:.1f}x")
    if device.type == "cpu":
        print("  on a CPU the forward pass of the batch's copies is host memory too: a smaller "
              "--max_batch_size_for_moment trades time for memory")


if __name__ == "__main__":
    main()
