"""The OoD training set of one epoch: all Cityscapes images of a split plus a random COCO subset."""
import numpy as np
from torch.utils.data import Dataset

from src.dataset.cityscapes import Cityscapes
from src.dataset.coco import COCO
from src.errors import UserError


class CityscapesCocoMix(Dataset):
    """Indices [0, num_cityscapes) are Cityscapes, the rest the drawn COCO images (the DataLoader shuffles).

    The COCO subset has round(subsampling_factor * num_cityscapes) images, drawn without replacement
    with numpy Generator(seed). Training builds one per epoch with seed + epoch, so each epoch redraws
    and every DDP rank draws the same subset.
    """
    train_id_out = COCO.train_id_out
    ignore_index = 255
    num_classes = Cityscapes.num_classes

    def __init__(self, cs_root, coco_root, split="train", transform=None, subsampling_factor=0.1, seed=0,
                 coco_background="road"):
        self.cityscapes = Cityscapes(cs_root, split, transform)
        self.coco = COCO(coco_root, split, transform, background=coco_background)
        num_coco = round(subsampling_factor * len(self.cityscapes))
        if num_coco > len(self.coco):
            raise UserError(f"--ood_subsampling_factor {subsampling_factor} asks for {num_coco} COCO images per epoch "
                             f"({subsampling_factor} x {len(self.cityscapes)} Cityscapes images), but {coco_root} "
                             f"has only {len(self.coco)} prepared ones; lower the factor")
        rng = np.random.default_rng(seed)
        self.coco_indices = np.sort(rng.choice(len(self.coco), size=num_coco, replace=False)).tolist()
        self.num_cityscapes = len(self.cityscapes)
        self.images = self.cityscapes.images + [self.coco.images[j] for j in self.coco_indices]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        """(image, target) of Cityscapes (train ids) or COCO (254 objects), after the transform."""
        if i < self.num_cityscapes:
            return self.cityscapes[i]
        return self.coco[self.coco_indices[i - self.num_cityscapes]]
