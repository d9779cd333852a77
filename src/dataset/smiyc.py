"""The SegmentMeIfYouCan tracks as downloaded: images/<frame>.<ext> and, where a frame is labelled,
labels_masks/<frame>_labels_semantic.png (0 in-distribution, 1 anomaly or obstacle, 255 void).

The metrics score the frames of the benchmark's validation set of the track (road_anomaly_benchmark/datasets,
at its newest commit): RoadAnomaly21 `AnomalyTrack-validation` (validation0000 .. validation0009, by name),
RoadObstacle21 `ObstacleTrack-validation` (the frames of scene `validation`, the part of the name before the
first `_`, except those whose names start with validation_19 or validation_21 .. validation_29). Every other
frame (the hidden test frames, a labelled frame the benchmark leaves out) still loads, with a target of all
255, so it can be run and exported; `has_label(i)` is False for it, the metrics skip it and `left_out` says why.
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

    benchmark_set = ""  # the benchmark's name of the frames scored

    def in_benchmark_set(self, name):
        """Whether the benchmark's validation set holds the frame `name`."""
        raise NotImplementedError

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
        files = [os.path.isfile(path) for path in self.targets]
        names = [self.frame_name(i) for i in range(len(self.images))]
        listed = [self.in_benchmark_set(name) for name in names]
        self.labelled = [has_file and in_set for has_file, in_set in zip(files, listed)]
        # frame name -> why the metrics leave it out
        self.left_out = {name: "no labels" if not has_file else f"not in the benchmark's {self.benchmark_set}"
                         for name, has_file, in_set in zip(names, files, listed) if not (has_file and in_set)}

    def label_files(self, i):
        # a labelled frame the benchmark leaves out is measured as unlabelled; its cache is made so
        return [self.targets[i]] if self.labelled[i] or not os.path.isfile(self.targets[i]) else []

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
    benchmark_set = "AnomalyTrack-validation"
    validation_frames = tuple(f"validation{k:04d}" for k in range(10))

    def in_benchmark_set(self, name):
        return name in self.validation_frames


class RoadObstacle21(_SegmentMeIfYouCanTrack):
    """dataset_ObstacleTrack/images/<frame>.webp (0 = road, 1 = obstacle)."""
    track = "dataset_ObstacleTrack"
    image_suffix = ".webp"
    benchmark_set = "ObstacleTrack-validation"
    excluded_prefixes = ("validation_19", *(f"validation_{k}" for k in range(21, 30)))

    def in_benchmark_set(self, name):
        return name.split("_")[0] == "validation" and not name.startswith(self.excluded_prefixes)
