"""Listing a dataset's files, with errors that say where we looked, what we expected and what to do."""
import glob
import os

import numpy as np
from PIL import Image


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
    """A label png as a PIL 'L' image of its raw values (palette images give their indices)."""
    label = Image.open(path)
    if label.mode == "L":
        return label
    if label.mode == "P":
        return Image.fromarray(np.asarray(label, dtype=np.uint8))
    raise ValueError(f"label {path} has mode {label.mode}; expected a single-channel 8-bit png (mode L or P)")
