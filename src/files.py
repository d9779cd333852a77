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


def load_npy(path, remedy):
    """The array of the .npy file `path`, read with allow_pickle=False so that it never runs code; a pickle, a
    truncated file or another kind of file is a UserError ending in `remedy` (what to do)."""
    return _load_numpy(path, remedy, "npy")


def load_npz(path, remedy):
    """{name: array} of the npz file `path`, read as load_npy reads."""
    data = _load_numpy(path, remedy, "npz")
    with data:
        try:
            return {name: data[name] for name in data.files}
        except _NUMPY_ERRORS as error:  # a damaged member: the archive is read lazily
            raise UserError(_refusal(path, "npz", error, remedy)) from None


# what np.load raises for a pickle (with allow_pickle=False), a truncated file or no numpy file at all
_NUMPY_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


def _load_numpy(path, remedy, kind):
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except _NUMPY_ERRORS as error:
        raise UserError(_refusal(path, kind, error, remedy)) from None
    if isinstance(data, np.lib.npyio.NpzFile) != (kind == "npz"):
        raise UserError(_refusal(path, kind, "an npz archive" if kind == "npy" else "a single array", remedy))
    return data


def _refusal(path, kind, reason, remedy):
    if isinstance(reason, Exception):  # numpy's first sentence; the rest advises loading unsafely
        reason = f"{type(reason).__name__}: {str(reason).split('. ')[0]}"
    return f"{path} is not a readable {kind} file of this project ({reason}); {remedy}"


def same_json(path, obj, hint):
    """Whether the JSON file `path` exists and holds `obj` (a damaged one: UserError with `hint`)."""
    return os.path.isfile(path) and load_json(path, hint) == obj
