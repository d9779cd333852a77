"""The SegmentMeIfYouCan tracks as downloaded: images/<frame>.<ext> and, where a frame is labelled,
labels_masks/<frame>_labels_semantic.png (0 in-distribution, 1 anomaly or obstacle, 255 void).

Unlabelled frames (the benchmark's hidden test frames) still load, with a target of all 255, so they can
be run and exported; `has_label(i)` tells them apart and the metrics skip them.
"""
import os

import numpy as np
from PIL import Image

from src.dataset.listing import LabelledImages, find_files, load_label


class _SegmentMeIfYouCanTrack(LabelledImages):
    track = ""  # dataset_AnomalyTrack or dataset_ObstacleTrack
    image_suffix = ""
    train_id_in = 0
    train_id_out = 1
    ignore_index = 255
    label_values = (0, 1, 255)

    def __init__(self, root, transform=None):
        """root: the track's folder (<data_root>/dataset_AnomalyTrack or dataset_ObstacleTrack)."""
        self.root = root
        self.transform = transform
        data_root = os.path.dirname(os.path.normpath(root))
        self.images = find_files(
            os.path.join(root, "images"), "*" + self.image_suffix, type(self).__name__,
            f"download the SegmentMeIfYouCan {self.track} into {data_root}, or write the demo world with "
            f"`python preparation/make_demo_world.py --data_root {data_root}`")
        self.targets = [os.path.join(root, "labels_masks", self.frame_name(i) + "_labels_semantic.png")
                        for i in range(len(self.images))]
        self.labelled = [os.path.isfile(path) for path in self.targets]

    def load_target(self, i, image):
        """PIL 'L' (0, 1, 255), all 255 when the frame is unlabelled."""
        if self.labelled[i]:
            return load_label(self.targets[i])
        return Image.new("L", image.size, self.ignore_index)

    def label_ids(self, i):
        """(H, W) uint8: the label png (0, 1, 255), all 255 for an unlabelled frame."""
        if self.labelled[i]:
            return np.array(load_label(self.targets[i]))
        width, height = Image.open(self.images[i]).size
        return np.full((height, width), self.ignore_index, dtype=np.uint8)

    def has_label(self, i):
        return self.labelled[i]

    def frame_name(self, i):
        return os.path.basename(self.images[i])[:-len(self.image_suffix)]


class RoadAnomaly21(_SegmentMeIfYouCanTrack):
    """dataset_AnomalyTrack/images/<frame>.jpg (1 = anomaly)."""
    track = "dataset_AnomalyTrack"
    image_suffix = ".jpg"


class RoadObstacle21(_SegmentMeIfYouCanTrack):
    """dataset_ObstacleTrack/images/<frame>.webp (0 = road, 1 = obstacle)."""
    track = "dataset_ObstacleTrack"
    image_suffix = ".webp"
