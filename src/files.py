"""Atomic file writes (a reader never sees a half-written file, even after Ctrl-C or a kill), and reads of
JSON and npz files that never run code and refuse a damaged file in one line."""
import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from src.errors import UserError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    The temporary name keeps the suffix, so writers that look at it (np.savez, PIL, h5py) behave.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, suffix = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = path  # a failed write (a full disk) names no file; the user needs to know which
        raise


def save_json(obj, path):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def load_json(path, remedy):
    """The JSON file `path`; a file that is not JSON (truncated, or another kind) is a UserError ending in
    `remedy` (what to do). JSON holds data only, so reading it never runs code."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not a readable JSON file ({error}); {remedy}") from None


def load_npz(path, remedy):
    """{name: array} of the npz file `path`, read with allow_pickle=False so that it never runs code; a pickle,
    a truncated file or another kind of file is a UserError ending in `remedy` (what to do)."""
    refused = f"{path} is not a readable npz file of this project"
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # an .npy file: one array, no archive
            raise UserError(f"{refused} (a single array); {remedy}")
        with data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # a pickle, truncated, not numpy
        raise UserError(f"{refused} ({type(error).__name__}: {str(error).split('. ')[0]}); {remedy}") from None
