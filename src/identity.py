"""What identifies the inputs a cache was made from: files by their content, not by their path.

A checkpoint is identified by the SHA-256 of its bytes, so a moved or copied io root keeps its caches and a
retrained checkpoint at the same path invalidates them. Hashing a 500 MB checkpoint takes seconds, so the
digest is remembered in a sidecar file beside it (<checkpoint>.sha256.json), trusted only while the
checkpoint's size and modification time are those it was made for.
"""
import contextlib
import hashlib
import os

from src.errors import UserError
from src.files import load_json, save_json

_CHUNK = 1 << 20


def file_digest(path):
    """Hex SHA-256 of the bytes of `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(checkpoint):
    return checkpoint + ".sha256.json"


def checkpoint_identity(path):
    """'sha256:<hex>' of the checkpoint file `path` ('random initialisation' for ''), via its sidecar."""
    if not path:
        return "random initialisation"
    stat = os.stat(path)
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = sidecar_path(path)
    if os.path.isfile(sidecar):
        with contextlib.suppress(UserError, OSError):  # a damaged sidecar is only a missed shortcut: hash again
            saved = load_json(sidecar, "")
            if {k: saved.get(k) for k in key} == key and isinstance(saved.get("sha256"), str):
                return f"sha256:{saved['sha256']}"
    digest = file_digest(path)
    # a checkpoint in a read-only folder (a shared download) is simply hashed on every run
    with contextlib.suppress(OSError):
        save_json({**key, "sha256": digest}, sidecar)
    return f"sha256:{digest}"


def files_identity(paths):
    """One short digest of the contents of `paths` (a missing file counts as absent), e.g. an image's labels."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(file_digest(path).encode() if os.path.isfile(path) else b"absent")
    return digest.hexdigest()[:16]


def label_identities(dataset):
    """One identity per image of an evaluation set: the contents of its label files (dataset.label_files(i))."""
    return [files_identity(dataset.label_files(i)) for i in range(len(dataset))]


def search_identity(checkpoint, labels):
    """What a segment search was made from: the checkpoint's identity and the labels of every image."""
    digest = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:16]
    return f"{checkpoint}, labels {digest}"
