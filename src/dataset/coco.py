"""COCO as OoD proxy: the train2017 images that have a mask in annotations/ood_seg_train2017/
(254 on objects, 0 elsewhere), written by preparation/prepare_coco_segmentation.py."""
import contextlib
import io
import json
import os

import numpy as np
import pycocotools.coco
from PIL import Image

from src.dataset.listing import OOD_TRAIN_ID, LabelledImages, find_files, load_label, require_labels
from src.errors import UserError

BACKGROUNDS = ("road", "ignore")


class COCO(LabelledImages):
    train_id_in = 0
    train_id_out = OOD_TRAIN_ID
    ignore_index = 255
    label_values = (0, OOD_TRAIN_ID, 255)  # after load_target: the background as 0 or 255
    min_image_size = 480
    # Cityscapes classes that also occur in COCO: person, bicycle, car, motorcycle, bus, truck,
    # traffic light, stop sign. Images holding any of them are no OoD proxy.
    excluded_category_ids = (1, 2, 3, 4, 6, 8, 10, 13)

    def __init__(self, root, split="train", transform=None, background="road"):
        """root: the COCO/2017 folder. background: label of non-object pixels, "road" (train id 0,
        as published) or "ignore" (255)."""
        if background not in BACKGROUNDS:
            raise ValueError(f"COCO background must be one of {BACKGROUNDS}, got {background!r}")
        self.root = root
        self.split = split
        self.transform = transform
        self.background = background
        data_root = os.path.dirname(os.path.dirname(os.path.normpath(root)))
        self.targets = find_files(
            os.path.join(root, "annotations", f"ood_seg_{split}2017"), "*.png", "COCO",
            f"run `python preparation/prepare_coco_segmentation.py --data_root {data_root}` (it needs "
            f"{split}2017/*.jpg and annotations/instances_{split}2017.json in {root})")
        self.images = [os.path.join(root, f"{split}2017", os.path.basename(path)[:-len(".png")] + ".jpg")
                       for path in self.targets]
        require_labels(self.targets, self.images, "COCO", f"{split}2017/<id:012d>.jpg",
                       f"download COCO {split}2017 into {root}, or delete the masks of missing images",
                       missing="masks have no image")
        self._lut = np.arange(256, dtype=np.uint8)
        self._lut[0] = self.train_id_in if background == "road" else self.ignore_index

    def load_target(self, i, image):
        """PIL 'L': 254 on objects, the background as 0 (road) or 255."""
        return Image.fromarray(self._lut[np.asarray(load_label(self.targets[i]))])


def load_instances(root, split="train"):
    """pycocotools index of <root>/annotations/instances_<split>2017.json (its loading chatter silenced)."""
    path = os.path.join(root, "annotations", f"instances_{split}2017.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO: {path} does not exist; download the COCO 2017 annotations "
                                f"(annotations/instances_{split}2017.json) into {root}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return pycocotools.coco.COCO(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"COCO: {path} is not a readable JSON file ({error}); download the annotations again") from None


def select_ood_images(coco_api, extra_excluded=(), min_size=COCO.min_image_size):
    """Sorted ids of the images usable as OoD proxy.

    coco_api: pycocotools index of instances_train2017.json. An image is kept when none of its
    instances (crowd included) has a category of COCO.excluded_category_ids or `extra_excluded`, and
    its height and width are both >= min_size.
    """
    unknown = sorted(set(extra_excluded) - set(coco_api.cats))
    if unknown:
        raise UserError(f"--exclude_categories {unknown} are no categories of this COCO annotation file; pass ids "
                        f"of instances_train2017.json")
    excluded = set(COCO.excluded_category_ids) | set(extra_excluded)
    return sorted(image_id for image_id, info in coco_api.imgs.items()
                  if info["height"] >= min_size and info["width"] >= min_size
                  and not any(ann["category_id"] in excluded for ann in coco_api.imgToAnns[image_id]))
