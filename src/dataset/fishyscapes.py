"""Fishyscapes: <split>/<name>.jpg with <split>/<name>.png (0 in-distribution, 1 OoD, 255 void)."""
import os

import numpy as np

from src.dataset.listing import LabelledImages, find_files, load_label, require_labels

SPLITS = ("Static", "LostAndFound")


class Fishyscapes(LabelledImages):
    train_id_in = 0
    train_id_out = 1
    ignore_index = 255
    label_values = (0, 1, 255)

    def __init__(self, root, split="Static", transform=None):
        if split not in SPLITS:
            raise ValueError(f"Fishyscapes split must be one of {SPLITS}, got {split!r}")
        self.root = root
        self.split = split
        self.transform = transform
        self.left_out = {}  # frame name -> why the metrics leave it out: every frame is scored
        data_root = os.path.dirname(os.path.normpath(root))
        self.images = find_files(
            os.path.join(root, split), "*.jpg", "Fishyscapes",
            f"download Fishyscapes {split} into {root}, or write the demo world with "
            f"`python preparation/make_demo_world.py --data_root {data_root}`")
        self.targets = [path[:-len(".jpg")] + ".png" for path in self.images]
        require_labels(self.images, self.targets, "Fishyscapes", f"{split}/<name>.png beside <name>.jpg",
                       f"download the Fishyscapes {split} labels into {os.path.join(root, split)}")

    def label_ids(self, i):
        """(H, W) uint8: the label png itself (0, 1, 255)."""
        return np.array(load_label(self.targets[i]))

    def has_label(self, i):
        return True

    def frame_name(self, i):
        return os.path.basename(self.images[i])[:-len(".jpg")]
