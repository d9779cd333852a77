"""Anomaly score maps in the SegmentMeIfYouCan submission layout: <dir>/<frame name>.hdf5, each holding one
dataset `value` of shape (H, W) (float16 as the benchmark stores them), higher = more anomalous.

evaluation.py --export_smiyc writes this layout; --scores_from reads it for any method's maps.
"""
import os

import h5py
import numpy as np

from tqdm import tqdm

from src.errors import UserError
from src.files import atomic_path


def score_map_path(directory, frame_name):
    return os.path.join(directory, f"{frame_name}.hdf5")


def score_map_files(directory, frame_names, flag="--scores_from"):
    """The score-map file of every frame of `frame_names`, in that order; UserError naming the missing ones."""
    if not os.path.isdir(directory):
        raise UserError(f"{flag}: {directory} is not a directory; pass the folder that holds <frame>.hdf5 files")
    paths = [score_map_path(directory, name) for name in frame_names]
    missing = [name for name, path in zip(frame_names, paths) if not os.path.isfile(path)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"{flag}: {len(missing)} of {len(paths)} frames have no score map in {directory} "
                        f"(missing: {shown}); write one <frame>.hdf5 with a dataset 'value' per frame")
    return paths


def read_score_map(path, shape=None, flag="--scores_from", as_stored=False):
    """(H, W) float32 of the `value` dataset of `path` (exact for float16 maps), or with `as_stored` the values as
    the file stores them (float16, float32 or float64; other dtypes as float64), which the benchmark reads;
    UserError when the file does not open, has no `value`, is not 2-D, or differs from `shape` (the frame's
    (H, W)) when given."""
    try:
        with h5py.File(path, "r") as f:
            if "value" not in f:
                raise UserError(f"{flag}: {path} has no dataset 'value'; write the score map as f['value']")
            value = f["value"][()]
    except OSError as error:
        raise UserError(f"{flag}: {path} is not a readable HDF5 file ({error}); write it again") from None
    if value.ndim != 2 or (shape is not None and value.shape != tuple(shape)):
        expected = "2-D" if shape is None else f"{tuple(shape)} like its frame"
        raise UserError(f"{flag}: the score map {path} has shape {value.shape}, expected {expected}; "
                        "write one (H, W) map per frame at the frame's resolution")
    if as_stored:
        return value if value.dtype in (np.float16, np.float32, np.float64) else value.astype(np.float64)
    return value.astype(np.float32)


FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: larger finite scores would be stored as inf


def write_score_map(path, score):
    """Write (H, W) `score` as float16 `value`, the benchmark's format (atomically, so no half file remains); a
    finite score beyond float16's range is a UserError (stored, it would silently read inf)."""
    score = np.asarray(score)
    finite = np.abs(score[np.isfinite(score)])
    if finite.size and finite.max() > FLOAT16_MAX:
        raise UserError(f"the score map for {path} reaches {finite.max():.6g}, beyond {FLOAT16_MAX:g}, the largest "
                        "value of a float16 score map, where it would read inf; rescale the scores (e.g. divide "
                        "them by a power of 10)")
    # built in memory, as the inference cache is (src/cache.py): HDF5 writing to a full disk itself leaves a file
    # with zeroed pixels and crashes the process when it closes it, Python's own write below fails cleanly
    with h5py.File(os.path.basename(path), "w", driver="core", backing_store=False) as f:
        f.create_dataset("value", data=score.astype(np.float16), compression="gzip")
        f.flush()
        image = f.id.get_file_image()
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(image)


def check_score_map_shapes(paths, shapes, flag="--scores_from"):
    """UserError naming every file of `paths` whose `value` is missing, unreadable or not of its frame's shape
    (`shapes`: one (H, W) per path). Reads the headers only, so all frames are checked before long work."""
    wrong = []
    for path, shape in zip(paths, shapes):
        try:
            with h5py.File(path, "r") as f:
                found = f["value"].shape if "value" in f else "no dataset 'value'"
        except OSError:
            found = "not readable HDF5"
        if found != tuple(shape):
            wrong.append(f"{os.path.basename(path)} ({found}, frame {tuple(shape)})")
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise UserError(f"{flag}: {len(wrong)} of {len(paths)} score maps in {os.path.dirname(paths[0])} do not fit "
                        f"their frames: {shown}; write one (H, W) dataset 'value' per frame at the frame's resolution")


def export_score_maps(source, out_dir, meta_filter=None, values=None):
    """Each frame's score map of the score source `source` (after the meta classifier with `meta_filter`) as
    submission files in `out_dir`. Finite scores beyond float16's range (`values`, the maps' MapValues) are
    refused before the first file, with a factor that brings them into it."""
    if values is not None and max(abs(values.low), abs(values.high)) > FLOAT16_MAX:
        largest = max(abs(values.low), abs(values.high))
        factor = 10 ** int(np.ceil(np.log10(largest / FLOAT16_MAX)))
        raise UserError(f"--export_smiyc: the score maps in {source.directory} reach {largest:.6g}, beyond "
                        f"{FLOAT16_MAX:g}, the largest value of the float16 submission files, where they would read "
                        f"inf; divide the maps by {factor} (the ranking stays the same), then search their segments "
                        "and train the meta classifier again at the scaled threshold")
    for i in tqdm(range(len(source)), desc="SMIYC export", unit="frame"):
        score = source.score(i)
        write_score_map(score_map_path(out_dir, source.dataset.frame_name(i)),
                        score if meta_filter is None else meta_filter(i, score))
    print(f"--export_smiyc: {len(source)} score maps" + (" after the meta classifier" if meta_filter else "") +
          f" -> {out_dir}")
