"""Joint (image, target) transforms: the same geometry is applied to both, the target padded with 255.

Randomness comes from torch's RNG, so `torch.manual_seed` and DataLoader worker seeding make runs
reproducible.
"""
import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = 255


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, target):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, target):
        if torch.rand(()).item() < self.p:
            return F.hflip(image), F.hflip(target)
        return image, target


class RandomCrop:
    """Random `size` x `size` window; smaller images are first padded at the bottom and right
    (image with 0, target with 255), so any input size works."""

    def __init__(self, size):
        if size < 1:
            raise ValueError(f"RandomCrop size must be >= 1, got {size}")
        self.size = size

    def __call__(self, image, target):
        if image.size != target.size:
            raise ValueError(f"image size {image.size} and target size {target.size} differ")
        width, height = image.size
        pad_w, pad_h = max(self.size - width, 0), max(self.size - height, 0)
        if pad_w or pad_h:
            image = F.pad(image, [0, 0, pad_w, pad_h], fill=0)
            target = F.pad(target, [0, 0, pad_w, pad_h], fill=IGNORE_INDEX)
            width, height = image.size
        top = torch.randint(0, height - self.size + 1, ()).item()
        left = torch.randint(0, width - self.size + 1, ()).item()
        return (F.crop(image, top, left, self.size, self.size),
                F.crop(target, top, left, self.size, self.size))


class Resize:
    """Resize to `size` (an int for the shorter side, or (height, width)): image bilinear, target
    nearest neighbour, so no new label values appear."""

    def __init__(self, size):
        self.size = size

    def __call__(self, image, target):
        size = [self.size] if isinstance(self.size, int) else list(self.size)
        return (F.resize(image, size, interpolation=F.InterpolationMode.BILINEAR),
                F.resize(target, size, interpolation=F.InterpolationMode.NEAREST))


class ToTensor:
    """PIL pair -> image (3, H, W) float32 in [0, 1], target (H, W) int64."""

    def __call__(self, image, target):
        if not isinstance(target, Image.Image):
            raise TypeError(f"ToTensor expects a PIL target, got {type(target).__name__}")
        return F.to_tensor(image), torch.from_numpy(np.array(target, dtype=np.int64))


class Normalize:
    """Standardise the image tensor per channel; the target passes unchanged."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.mean = list(mean)
        self.std = list(std)

    def __call__(self, image, target):
        return F.normalize(image, self.mean, self.std), target
