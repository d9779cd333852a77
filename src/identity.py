"""What identifies the inputs a cache was made from: files by their content, not by their path.

An image is identified the same way, without a sidecar (a run never writes into the data root): its cache
records the image's digest and its size and modification time; the image is the same while these match,
and is hashed again only when they do not (a copied data root keeps its caches, a replaced image does not).

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


def search_identity(checkpoint, labels, images):
    """What a segment search was made from: the checkpoint's identity, the labels of every image and the images
    (`images`: the digests their cache files record, see src.cache.cached_images)."""
    digest = hashlib.sha256("\n".join(labels).encode()).hexdigest()[:16]
    return f"{checkpoint}, labels {digest}, images {hashlib.sha256(chr(10).join(images).encode()).hexdigest()[:16]}"


def file_stamp(path):
    """'<size>:<modification time in ns>' of `path`: while it is unchanged, so (in practice) is the content."""
    stat = os.stat(path)
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def image_identity(path):
    """{"image_stamp", "image_digest"} of the image file `path`, as a cache records it (see same_image)."""
    return {"image_stamp": file_stamp(path), "image_digest": files_identity([path])}


def same_image(recorded, path):
    """Whether the image file `path` is the one whose image_identity is in `recorded` (a dict): the same size and
    time, or else the same content; False when nothing is recorded (a cache of an earlier version)."""
    if "image_digest" not in recorded:
        return False
    return recorded.get("image_stamp") == file_stamp(path) or recorded["image_digest"] == files_identity([path])
