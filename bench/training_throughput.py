"""Training throughput of stage 1 (images/s): float32 against mixed precision (AMP), per model.

One training step is what ood_training.py does per batch: forward, the entropy loss on a target with
in-distribution, OoD and void pixels, backward and an Adam step. On CUDA both float32 and AMP run and
the ratio is printed; on the CPU only float32 runs (AMP is a CUDA feature here) and the script says so.
WideResNet38 is slow on a CPU, so the CPU defaults use a batch of 2 and few steps.

    python bench/training_throughput.py [--models DeepLabV3+_TinyResNet DeepLabV3+_WideResNet38] [--crop 480]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from src.losses import OOD_ID, entropy_loss  # noqa: E402
from src.model import build_model  # noqa: E402


def images_per_second(model, device, amp, batch_size, crop, steps):
    """Mean images/s over `steps` training steps after one warm-up step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    images = torch.randn(batch_size, 3, crop, crop, device=device)
    target = torch.randint(0, 19, (batch_size, crop, crop), device=device)
    target[:, : crop // 4] = OOD_ID
    target[:, -crop // 8:] = 255
    model.train()

    def step():
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = model(images)
        loss = entropy_loss(logits, target, 0.9)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["DeepLabV3+_TinyResNet", "DeepLabV3+_WideResNet38"])
    parser.add_argument("--crop", type=int, default=480)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 8 on CUDA, 2 on the CPU (one image breaks BatchNorm in the ASPP pooling)")
    parser.add_argument("--steps", type=int, default=None, help="default: 20 on CUDA, 2 on the CPU")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batch_size = args.batch_size or (8 if cuda else 2)
    steps = args.steps or (20 if cuda else 2)
    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"training throughput at crop {args.crop}, batch {batch_size}, {steps} steps, on {where}")
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name).to(device)
        fp32 = images_per_second(model, device, False, batch_size, args.crop, steps)
        if cuda:
            amp = images_per_second(model, device, True, batch_size, args.crop, steps)
            print(f"{name:26s} float32 {fp32:8.2f} img/s   AMP {amp:8.2f} img/s   AMP / float32 {amp / fp32:5.2f}x")
        else:
            print(f"{name:26s} float32 {fp32:8.2f} img/s   (AMP skipped: it needs CUDA)")


if __name__ == "__main__":
    main()
