"""Cityscapes with fine train-id labels: leftImg8bit/<split>/<city>/*_leftImg8bit.png and
gtFine/<split>/<city>/*_gtFine_labelTrainIds.png (0..18 the train classes, 255 void)."""
import os

import numpy as np
from cityscapesscripts.helpers.labels import labels as CITYSCAPES_LABELS

from src.dataset.listing import LabelledImages, find_files, require_labels


def _label_id_to_train_id():
    lut = np.full(256, 255, dtype=np.uint8)
    for label in CITYSCAPES_LABELS:
        if label.id >= 0:  # the license plate has id -1 and never appears in labelIds images
            lut[label.id] = label.trainId if 0 <= label.trainId < 255 else 255
    return lut


class Cityscapes(LabelledImages):
    num_classes = 19
    ignore_index = 255
    label_values = (*range(19), 255)  # train ids
    class_names = tuple(label.name for label in sorted(
        (label for label in CITYSCAPES_LABELS if 0 <= label.trainId < 255), key=lambda label: label.trainId))
    # Official labelIds -> train ids, from the label table of cityscapesscripts.
    label_id_to_train_id = _label_id_to_train_id()

    def __init__(self, root, split="train", transform=None):
        self.root = root
        self.split = split
        self.transform = transform
        data_root = os.path.dirname(os.path.normpath(root))
        self.images = find_files(
            os.path.join(root, "leftImg8bit", split), "*/*_leftImg8bit.png", "Cityscapes",
            f"download Cityscapes (leftImg8bit, gtFine) into {root}, or write the demo world with "
            f"`python preparation/make_demo_world.py --data_root {data_root}`")
        self.targets = [os.path.join(root, "gtFine", split, os.path.basename(os.path.dirname(path)),
                                     self.frame_name(i) + "_gtFine_labelTrainIds.png")
                        for i, path in enumerate(self.images)]
        require_labels(self.images, self.targets, "Cityscapes",
                       f"gtFine/{split}/<city>/*_gtFine_labelTrainIds.png",
                       f"run `python preparation/prepare_cityscapes.py --data_root {data_root}` to make them "
                       "from the official *_gtFine_labelIds.png")

    def frame_name(self, i):
        """<city>_<seq>_<frame>, the file name without _leftImg8bit.png."""
        return os.path.basename(self.images[i])[:-len("_leftImg8bit.png")]


def train_ids_from_label_ids(label_ids):
    """label_ids: (H, W) uint8 official Cityscapes labelIds -> (H, W) uint8 train ids (255 void)."""
    return Cityscapes.label_id_to_train_id[np.asarray(label_ids, dtype=np.uint8)]
