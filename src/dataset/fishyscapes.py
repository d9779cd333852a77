"""Fishyscapes: <split>/<name>.jpg with <split>/<name>.png (0 in-distribution, 1 OoD, 255 void), the layout the
original code read. The LostAndFound split also reads the SegmentMeIfYouCan benchmark's layout when that folder
is absent: the labels in <data_root>/dataset_FishyLAF/labels/val/<frame>_fishy-labels.png (its
FishyLAFAnomaly-val track), the images those of LostAndFound (lost_and_found/leftImg8bit/<split>/<sequence>/
<frame>_leftImg8bit.png), as the benchmark reads them."""
import glob
import os

import numpy as np

from src.dataset.listing import LabelledImages, find_files, load_label, require_labels

SPLITS = ("Static", "LostAndFound")
FISHY_LAF_LABELS = os.path.join("dataset_FishyLAF", "labels", "val")
FISHY_LAF_SUFFIX = "_fishy-labels.png"


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
        fishy_laf = os.path.join(data_root, FISHY_LAF_LABELS)
        if split == "LostAndFound" and not os.path.isdir(os.path.join(root, split)) and os.path.isdir(fishy_laf):
            self._find_fishy_laf(data_root, fishy_laf)
            return
        self.images = find_files(
            os.path.join(root, split), "*.jpg", "Fishyscapes",
            f"download Fishyscapes {split} into {root}"
            + (f" (or its labels into {fishy_laf}, beside LostAndFound)" if split == "LostAndFound" else "")
            + f", or write the demo world with `python preparation/make_demo_world.py --data_root {data_root}`")
        self.targets = [path[:-len(".jpg")] + ".png" for path in self.images]
        self.names = [os.path.basename(path)[:-len(".jpg")] for path in self.images]
        require_labels(self.images, self.targets, "Fishyscapes", f"{split}/<name>.png beside <name>.jpg",
                       f"download the Fishyscapes {split} labels into {os.path.join(root, split)}")

    def _find_fishy_laf(self, data_root, labels):
        self.targets = find_files(labels, "*" + FISHY_LAF_SUFFIX, "Fishyscapes LostAndFound",
                                  "download the Fishyscapes LostAndFound labels there")
        self.names = [os.path.basename(path)[:-len(FISHY_LAF_SUFFIX)] for path in self.targets]
        laf = os.path.join(data_root, "lost_and_found", "leftImg8bit")
        # a frame name is <sequence>_<6 digits>_<6 digits>; its image is in LostAndFound's train or test split
        self.images = []
        for name in self.names:
            pattern = os.path.join(laf, "*", name.rsplit("_", 2)[0], f"{name}_leftImg8bit.png")
            found = glob.glob(pattern)
            self.images.append(found[0] if found else pattern)  # the pattern names a missing image
        require_labels(self.targets, self.images, "Fishyscapes LostAndFound",
                       "lost_and_found/leftImg8bit/<split>/<sequence>/<frame>_leftImg8bit.png",
                       f"unpack LostAndFound's leftImg8bit into {os.path.dirname(laf)}",
                       missing="labels have no image")

    def label_ids(self, i):
        """(H, W) uint8: the label png itself (0, 1, 255)."""
        return np.array(load_label(self.targets[i]))

    def has_label(self, i):
        return True

    def frame_name(self, i):
        return self.names[i]
