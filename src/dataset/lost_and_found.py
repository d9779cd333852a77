"""LostAndFound: leftImg8bit/<split>/<seq>/<seq>_<a>_<b>_leftImg8bit.png with gtCoarse labels.

Train ids (made by preparation/prepare_lost_and_found.py as *_gtCoarse_labelTrainIds.png):
1 free road (in-distribution), 2 hazard (OoD), 0 non-hazard object (ignored in pixel metrics but inside
the region searched for segments), 255 void.
"""
import os

import numpy as np

from src.dataset.listing import LabelledImages, find_files, load_label, require_labels


def _lookup_table(train_ids):
    """{label id: train id} -> uint8 table of 256 entries, 255 for ids LostAndFound does not have."""
    lut = np.full(256, 255, dtype=np.uint8)
    lut[list(train_ids)] = list(train_ids.values())
    return lut


class LostAndFound(LabelledImages):
    train_id_in = 1
    train_id_out = 2
    train_id_non_hazard = 0
    ignore_index = 255
    label_values = (0, 1, 2, 255)  # train ids
    # gtCoarse labelIds: 0 unlabelled / out of ROI, 1 free road, then the objects.
    void_label_id = 0
    free_label_id = 1
    hazard_label_ids = (*range(2, 31), 32, 35, 40, 41, 42, 43)
    non_hazard_label_ids = (31, 33, 34, 36, 37, 38, 39)
    label_id_to_train_id = _lookup_table({void_label_id: ignore_index, free_label_id: train_id_in,
                                          **dict.fromkeys(hazard_label_ids, train_id_out),
                                          **dict.fromkeys(non_hazard_label_ids, train_id_non_hazard)})

    def __init__(self, root, split="test", transform=None):
        self.root = root
        self.split = split
        self.transform = transform
        data_root = os.path.dirname(os.path.normpath(root))
        self.images = find_files(
            os.path.join(root, "leftImg8bit", split), "*/*_leftImg8bit.png", "LostAndFound",
            f"download LostAndFound (leftImg8bit, gtCoarse) into {root}, or write the demo world with "
            f"`python preparation/make_demo_world.py --data_root {data_root}`")
        label_stems = [os.path.join(root, "gtCoarse", split, os.path.basename(os.path.dirname(path)),
                                    self.frame_name(i) + "_gtCoarse_")
                       for i, path in enumerate(self.images)]
        self.annotations = [stem + "labelIds.png" for stem in label_stems]
        self.targets = [stem + "labelTrainIds.png" for stem in label_stems]
        require_labels(self.images, self.annotations, "LostAndFound",
                       f"gtCoarse/{split}/<seq>/*_gtCoarse_labelIds.png",
                       f"download the LostAndFound gtCoarse labels into {root}")
        require_labels(self.images, self.targets, "LostAndFound",
                       f"gtCoarse/{split}/<seq>/*_gtCoarse_labelTrainIds.png",
                       f"run `python preparation/prepare_lost_and_found.py --data_root {data_root}` to make "
                       "them from *_gtCoarse_labelIds.png")

    def label_files(self, i):
        return [self.targets[i], self.annotations[i]]

    def label_ids(self, i):
        """(H, W) uint8: the official gtCoarse labelIds of image i."""
        return np.array(load_label(self.annotations[i]))

    def has_label(self, i):
        return True

    def frame_name(self, i):
        """<seq>_<a>_<b>, the file name without _leftImg8bit.png."""
        return os.path.basename(self.images[i])[:-len("_leftImg8bit.png")]


def train_ids_from_label_ids(label_ids):
    """label_ids: (H, W) uint8 gtCoarse labelIds -> (H, W) uint8 train ids.

    Raises ValueError on ids LostAndFound does not define (above 43), which mean the file is no
    gtCoarse labelIds image.
    """
    label_ids = np.asarray(label_ids, dtype=np.uint8)
    unknown = np.setdiff1d(np.unique(label_ids), np.arange(44))
    if unknown.size:
        raise ValueError(f"LostAndFound labelIds {unknown.tolist()} are not in 0..43")
    return LostAndFound.label_id_to_train_id[label_ids]
