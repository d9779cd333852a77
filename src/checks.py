"""Checks that run before long work starts, so that a wrong input stops a run in its first seconds, with one
line naming the file or flag, instead of after an epoch of training or hours of inference."""
import os

import numpy as np
from PIL import Image

from src.errors import UserError

# what PIL raises for a file that is no image, a truncated one, or a broken one
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


def check_output_dir(path, flag):
    """`path` (named by `flag`) is a directory this user may write, or can be made as one."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        where = "is a file" if existing == os.path.abspath(path) else f"lies under {existing}, which is a file"
        raise UserError(f"{flag} {path} {where}, not a directory; pass a directory (it is made when missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: {existing} is not writable for this user; pass a directory you may write")


def check_not_input(path, flag, inputs):
    """The output folder `path` (named by `flag`) is neither one of the folders a run reads (`inputs`: {flag: folder};
    empty folders are skipped) nor inside one: a run never writes into a folder the user gave it as input.
    Real paths are compared, so a symbolic link or another spelling of the same folder is noticed too."""
    real = os.path.realpath(path)
    for name, folder in inputs.items():
        if not folder:
            continue
        source = os.path.realpath(folder)
        if real == source or real.startswith(source.rstrip(os.sep) + os.sep):
            where = "is the folder" if real == source else f"lies inside the folder {folder}"
            raise UserError(f"{flag} {path} {where} of {name}, which this run reads, so its files would be "
                            f"overwritten or mixed with the outputs; pass {flag} a folder outside it")


def open_image(path, kind="image"):
    """The image `path` opened lazily (header only: its size is known, its pixels are not decoded yet)."""
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise UserError(f"{kind} {path} does not exist; restore it or download the dataset again") from None
    except IMAGE_ERRORS as error:
        raise UserError(f"{path} is not a readable image ({error}); replace it with a good copy") from None


def read_image(path):
    """The image `path` decoded as PIL RGB; a missing, truncated or undecodable file is a UserError."""
    image = open_image(path)
    try:
        return image.convert("RGB")
    except IMAGE_ERRORS as error:
        raise UserError(f"{path} cannot be decoded ({error}); replace it with a good copy") from None


def check_target(target, label_path, allowed, encoding, image_size, image_path):
    """The label image `target` (PIL, or (H, W) array) holds only the values `allowed` of `encoding`, and has the
    size (width, height) of its image."""
    values = np.asarray(target)
    if (values.shape[1], values.shape[0]) != tuple(image_size):
        raise UserError(f"label {label_path} is {values.shape[1]} x {values.shape[0]} px but its image {image_path} "
                        f"is {image_size[0]} x {image_size[1]}; replace the label or the image")
    counts = np.bincount(values.reshape(-1), minlength=256)
    unexpected = np.setdiff1d(np.flatnonzero(counts), allowed)
    if unexpected.size:
        shown = ", ".join(str(v) for v in unexpected[:8]) + (", ..." if unexpected.size > 8 else "")
        legal = _ranges(allowed)
        raise UserError(f"label {label_path} holds values {shown}, which the {encoding} encoding does not have "
                        f"(legal: {legal}); is it the right file (train ids, not label ids)? Prepare it again")


def check_labels(dataset, indices=None):
    """Every label of `dataset` (an evaluation set; images `indices`, default all) is readable, holds only the
    values of its encoding and has the size of its image. Reads the labels and the image headers only."""
    for i in range(len(dataset)) if indices is None else indices:
        image = open_image(dataset.images[i])
        if dataset.has_label(i):
            check_target(dataset.load_target(i, image), dataset.targets[i], dataset.label_values,
                         type(dataset).__name__, image.size, dataset.images[i])


def check_crop(images, crop_size):
    """--crop_size fits the training images: larger than every side of every image, each crop would be mostly
    padding (and a huge one allocates until the process is killed)."""
    largest = max(max(open_image(path).size) for path in images)
    if crop_size > largest:
        raise UserError(f"-crop {crop_size} is larger than every training image (the largest side is {largest} px); "
                        f"pass -crop {largest} or less")


def _ranges(values):
    """'0..18, 255' for (0, 1, ..., 18, 255)."""
    values = sorted(int(v) for v in values)
    runs = [[values[0], values[0]]]
    for value in values[1:]:
        if value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(first) if first == last else f"{first}..{last}" for first, last in runs)
