"""The one inference path of every later stage: eval mode, no autograd, optional float16 autocast on CUDA."""
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm


def predict_logits(model, images, amp):
    """images: (N, 3, H, W) float32, normalised -> logits (N, C, H, W) float32 on the model's device.

    Puts `model` in eval mode (BatchNorm running statistics, dropout off). amp: float16 autocast,
    CUDA only. The result is an ordinary tensor (not an inference tensor): callers may modify it.
    """
    device = next(model.parameters()).device
    if amp and device.type != "cuda":
        raise ValueError(f"amp=True needs the model on a CUDA device, it is on {device}; pass amp=False")
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        logits = model(images.to(device, non_blocking=True))
    return logits.to(torch.float32, copy=True)


def _single(batch):
    """collate_fn for batch size 1 that leaves the target as the dataset returns it (types differ)."""
    (image, target), = batch
    return image.unsqueeze(0), target


def infer_dataset(model, dataset, device, amp, indices=None, num_workers=0, progress=True):
    """Yield (index, logits (C, H, W) float32 on `device`, target) for dataset[index], index in `indices`
    (default: all).

    dataset[i] returns (image (3, H, W) float32 normalised, target); images run one at a time at full
    resolution, so they may differ in size. A tqdm bar counts the images unless progress is False (the
    ranks other than 0 of a torchrun job).
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    device = torch.device(device)
    model.to(device)
    loader = DataLoader(Subset(dataset, indices), batch_size=1, shuffle=False, num_workers=num_workers,
                        collate_fn=_single, pin_memory=device.type == "cuda")
    for index, (image, target) in tqdm(zip(indices, loader), total=len(indices), desc="inference", unit="image",
                                       disable=not progress):
        yield index, predict_logits(model, image, amp)[0], target
