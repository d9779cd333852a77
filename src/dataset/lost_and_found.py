"""LostAndFound: leftImg8bit/<split>/<seq>/<seq>_<a>_<b>_leftImg8bit.png with gtCoarse labels.

Train ids (made by preparation/prepare_lost_and_found.py as *_gtCoarse_labelTrainIds.png):
1 free road (in-distribution), 2 hazard (OoD), 0 non-hazard object (ignored in pixel metrics but inside
the region searched for segments), 255 void.

`no_known=True` is the SegmentMeIfYouCan leaderboard's `LostAndFound-testNoKnown`
(road_anomaly_benchmark/datasets/tracks.py): the 1203 test frames sorted by name, without the 17 frames
at NO_KNOWN_EXCLUDED_INDICES (no labelled pixel) and without the frames whose names start with
NO_KNOWN_EXCLUDED_PREFIXES (as the benchmark lists them; only the first names test frames, the others
train sequences): 1043 frames. Its labels come from the labelIds: 1 road -> 0 (in-distribution), 2..200
every object -> 1 (OoD), anything else -> 255.
"""
import os

import numpy as np

from PIL import Image

from src.dataset.listing import LabelledImages, find_files, load_label, require_labels
from src.errors import UserError

NO_KNOWN_EXCLUDED_INDICES = (17, 37, 55, 72, 91, 110, 129, 153, 174, 197, 218, 353, 490, 618, 686, 792, 793)
NO_KNOWN_EXCLUDED_PREFIXES = ("15_Rechbergstr_Deckenpfronn", "01_Hanns_Klemm_Str_45_000006",
                              "01_Hanns_Klemm_Str_45_000007", "10_Schlossberg_9_000004")
NO_KNOWN_TEST_FRAMES = 1203


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

    def __init__(self, root, split="test", transform=None, no_known=False):
        self.root = root
        self.split = split
        self.transform = transform
        self.no_known = no_known
        self.left_out = {}  # frame name -> why the metrics leave it out
        data_root = os.path.dirname(os.path.normpath(root))
        self.images = find_files(
            os.path.join(root, "leftImg8bit", split), "*/*_leftImg8bit.png", "LostAndFound",
            f"download LostAndFound (leftImg8bit, gtCoarse) into {root}, or write the demo world with "
            f"`python preparation/make_demo_world.py --data_root {data_root}`")
        if no_known:
            self.images = self._no_known_frames(self.images)
            self.train_id_in, self.train_id_out = 0, 1
        label_stems = [os.path.join(root, "gtCoarse", split, os.path.basename(os.path.dirname(path)),
                                    self.frame_name(i) + "_gtCoarse_")
                       for i, path in enumerate(self.images)]
        self.annotations = [stem + "labelIds.png" for stem in label_stems]
        self.targets = [stem + "labelTrainIds.png" for stem in label_stems]
        require_labels(self.images, self.annotations, "LostAndFound",
                       f"gtCoarse/{split}/<seq>/*_gtCoarse_labelIds.png",
                       f"download the LostAndFound gtCoarse labels into {root}")
        if no_known:  # its labels are made from the labelIds when loaded
            return
        require_labels(self.images, self.targets, "LostAndFound",
                       f"gtCoarse/{split}/<seq>/*_gtCoarse_labelTrainIds.png",
                       f"run `python preparation/prepare_lost_and_found.py --data_root {data_root}` to make "
                       "them from *_gtCoarse_labelIds.png")

    def label_files(self, i):
        return [self.targets[i], self.annotations[i]]
    def _no_known_frames(self, images):
        """The leaderboard's LostAndFound-testNoKnown frames of `images` (all test frames)."""
        if self.split != "test" or len(images) != NO_KNOWN_TEST_FRAMES:
            raise UserError(f"--laf_split testNoKnown selects from the {NO_KNOWN_TEST_FRAMES} LostAndFound test frames, "
                            f"but {os.path.join(self.root, 'leftImg8bit', self.split)} holds {len(images)}; "
                            "download the whole test split, or use --laf_split test")
        by_name = sorted(images, key=lambda path: os.path.basename(path))
        kept = np.delete(np.arange(len(by_name)), NO_KNOWN_EXCLUDED_INDICES)
        name = [os.path.basename(path)[:-len("_leftImg8bit.png")] for path in by_name]
        self.left_out = {name[i]: "no labelled pixel, as the benchmark lists it" for i in NO_KNOWN_EXCLUDED_INDICES}
        self.left_out.update({name[i]: "a sequence with children or bicycles" for i in kept
                              if name[i].startswith(NO_KNOWN_EXCLUDED_PREFIXES)})
        return [by_name[i] for i in kept if not name[i].startswith(NO_KNOWN_EXCLUDED_PREFIXES)]

    def load_target(self, i, image):
        if self.no_known:
            return Image.fromarray(no_known_labels(self.label_ids(i)))
        return super().load_target(i, image)

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


def no_known_labels(label_ids):
    """(H, W) uint8 gtCoarse labelIds -> the leaderboard's labels: 0 road (1), 1 any object (2..200), 255 else."""
    label_ids = np.asarray(label_ids)
    label = np.full(label_ids.shape, 255, dtype=np.uint8)
    label[label_ids == 1] = 0
    label[(label_ids >= 2) & (label_ids <= 200)] = 1
    return label
