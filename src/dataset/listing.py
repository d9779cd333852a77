"""Listing a dataset's files (with errors that say where we looked, what we expected and what to do),
reading them as (image, label) pairs, and converting label files."""
import glob
import os

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from src.checks import IMAGE_ERRORS, check_target, open_image, read_image
from src.errors import UserError
from src.files import atomic_path

OOD_TRAIN_ID = 254  # the training label of OoD pixels: COCO objects, pasted objects


def find_files(folder, pattern, dataset, hint):
    """Sorted paths matching the glob `pattern` under `folder`.

    Raises FileNotFoundError naming `folder`, `pattern` and the `hint` (what the user should do)
    when the folder is missing or holds no matching file.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{dataset}: directory {folder} does not exist (expected {pattern} in it); {hint}")
    files = sorted(glob.glob(os.path.join(folder, pattern)))
    if not files:
        raise FileNotFoundError(f"{dataset}: no files matching {pattern} in {folder}; {hint}")
    return files


def require_labels(images, labels, dataset, pattern, hint, missing="images have no label"):
    """Raise FileNotFoundError when a file of `labels` (paired by position with `images`) is missing.

    `missing` words the problem in the message ("images have no label", "masks have no image").
    """
    absent = [(image, label) for image, label in zip(images, labels) if not os.path.isfile(label)]
    if absent:
        image, label = absent[0]
        raise FileNotFoundError(f"{dataset}: {len(absent)} of {len(images)} {missing}: {label} is missing "
                                f"for {image} (expected {pattern}); {hint}")


def load_label(path):
    """A label png as a PIL 'L' image of its raw values (palette images give their indices), decoded; a
    missing, truncated or undecodable file is a UserError naming it."""
    label = open_image(path, "label")
    if label.mode not in ("L", "P"):
        raise UserError(f"label {path} has mode {label.mode}; expected a single-channel 8-bit png (mode L or P)")
    try:
        return Image.fromarray(np.asarray(label, dtype=np.uint8))
    except IMAGE_ERRORS as error:
        raise UserError(f"label {path} cannot be decoded ({error}); replace it with a good copy") from None


class LabelledImages(Dataset):
    """Images paired by position with label pngs: a subclass's constructor fills `images`, `targets` and
    `transform`. An item is (PIL RGB image, PIL 'L' target), or what the joint transform makes of them.
    A target holding a value outside `label_values` (of load_target's result) is a UserError naming the file."""

    def __len__(self):
        return len(self.images)

    def label_files(self, i):
        """The files the labels of item i are read from (a cache made from them is stale when they change)."""
        return [self.targets[i]]

    def load_target(self, i, image):
        """The target of item i (a subclass may remap it); `image` is its PIL image."""
        return load_label(self.targets[i])

    def __getitem__(self, i):
        image = read_image(self.images[i])
        target = self.load_target(i, image)
        check_target(target, self.targets[i], self.label_values, type(self).__name__, image.size, self.images[i])
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def convert_label_files(label_files, convert, desc):
    """Write <..>labelTrainIds.png beside each <..>labelIds.png of `label_files` that has none yet.

    convert: (H, W) uint8 label ids -> (H, W) uint8 train ids. Returns how many files were written.
    """
    written = 0
    for path in tqdm(label_files, desc=desc):
        out = path[:-len("labelIds.png")] + "labelTrainIds.png"
        if os.path.isfile(out):
            continue
        try:
            train_ids = convert(np.asarray(load_label(path)))
        except ValueError as error:
            raise UserError(f"{path}: {error}; is it a label-id file of this dataset?") from None
        with atomic_path(out) as tmp:
            Image.fromarray(train_ids).save(tmp)
        written += 1
    return written
