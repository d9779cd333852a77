"""The inference cache of stage 2: one compressed HDF5 file per evaluation image.

Each file holds the softmax as float16, the normalised entropy of the float32 softmax as float32 (the
segment search thresholds it, so float16 rounding must not move pixels across the threshold), the max
logit as float32 (for the max-logit and SML scores), the logsumexp of the logits as float32 (for the energy
score; caches written before it lack it, and the energy score is then skipped), the largest of the float16
probabilities of each pixel as float16 and its class as uint8 (`max_prob` and `pred`, what the max-softmax and
SML scores read instead of the whole softmax; caches written before them lack them, and read_cache then computes
them from the probs, the same numbers), the train-id ground truth, the official label ids, and attributes saying
which image and which checkpoint made it. Compressed with Blosc2 (zstd level 1 after a byte shuffle, one thread),
that is 19-24 MiB per 1024x2048 image of network-like maps against the original's 152 MiB, as small as gzip and
compressed several times faster (bench/cache_size.py). Caches written with gzip by earlier versions read as
before: each file records its filter, and importing hdf5plugin is what makes Blosc2 readable to h5py.
"""
import collections
import contextlib
import glob
import multiprocessing
import os

import h5py
import hdf5plugin
import numpy as np
import torch

from src.errors import UserError, ignore_interrupt
from src.evaluation.scores import normalized_entropy_tensor, softmax_top
from src.files import atomic_path
from src.identity import checkpoint_identity, image_identity, same_image  # noqa: F401  (checkpoint_identity: the
# identity every cache user compares)

# zstd level 1: level 3 gains 3% in size and costs twice the write time; lz4 is as fast and 15% larger,
# gzip as small and 5-10x slower (bench/cache_size.py); one thread, as the writer processes run in parallel
_COMPRESSION = hdf5plugin.Blosc2(cname="zstd", clevel=1, filters=hdf5plugin.Blosc2.SHUFFLE)
FIELDS = ("probs", "entropy", "max_logit", "gt_train", "gt_label")
OPTIONAL_FIELDS = ("logsumexp",)  # read by default when the file has them
# softmax_top of the stored probs: from the file, or from its probs when the file lacks them
TOP_FIELDS = ("max_prob", "pred")


def cache_path(cache_dir, index):
    return os.path.join(cache_dir, f"{index:05d}.h5")


def cache_arrays(probs):
    """What the cache stores of the float32 softmax probs (C, H, W) (a tensor on any device, or an array):
    (probs as float16, normalised entropy as float32), numpy arrays on the host."""
    probs = torch.as_tensor(probs, dtype=torch.float32)
    # torch converts to float16 about a hundred times faster than numpy
    return probs.half().cpu().numpy(), normalized_entropy_tensor(probs).cpu().numpy()


def write_cache(path, probs, max_logit, gt_train, gt_label, attrs, logsumexp=None):
    """Write one image's cache atomically.

    probs: (C, H, W) float32 softmax; max_logit: (H, W) float32; gt_train, gt_label: (H, W) uint8;
    attrs: dict of str/int/float (image_path, frame_name, checkpoint, ...); logsumexp: None or (H, W) float32.
    """
    write_cache_arrays(path, *cache_arrays(probs), max_logit, gt_train, gt_label, attrs, logsumexp)


def write_cache_arrays(path, probs16, entropy, max_logit, gt_train, gt_label, attrs, logsumexp=None):
    """write_cache from the arrays of cache_arrays (the compression alone, for writer processes)."""
    rows = min(probs16.shape[1], 256)
    # built in memory (HDF5's own driver, no Python callbacks for Ctrl-C to land in): HDF5 crashes the process
    # when the disk fills under it, Python's own write below fails cleanly
    with h5py.File(os.path.basename(path), "w", driver="core", backing_store=False) as f:
        f.create_dataset("probs", data=probs16, chunks=(1, rows, probs16.shape[2]), **_COMPRESSION)
        f.create_dataset("entropy", data=entropy, chunks=(rows, probs16.shape[2]), **_COMPRESSION)
        f.create_dataset("max_logit", data=np.asarray(max_logit, dtype=np.float32), chunks=(rows, probs16.shape[2]),
                         **_COMPRESSION)
        if logsumexp is not None:
            f.create_dataset("logsumexp", data=np.asarray(logsumexp, dtype=np.float32),
                             chunks=(rows, probs16.shape[2]), **_COMPRESSION)
        # from the probs as stored, so that the scores read from them are those computed from the probs
        for key, array in zip(TOP_FIELDS, softmax_top(probs16)):
            f.create_dataset(key, data=array, chunks=(rows, probs16.shape[2]), **_COMPRESSION)
        f.create_dataset("gt_train", data=gt_train.astype(np.uint8), **_COMPRESSION)
        f.create_dataset("gt_label", data=gt_label.astype(np.uint8), **_COMPRESSION)
        for key, value in attrs.items():
            f.attrs[key] = value
        f.flush()
        image = f.id.get_file_image()
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(image)


def write_outputs(outputs, dataset, cache_dir, attrs, workers):
    """Cache each (i, logits (C, H, W), target (H, W)) of `outputs` (src.model.infer_dataset) as frame i of
    `dataset`, with the attributes `attrs` of every file (checkpoint, labels per frame, model: see
    meta_classification.py). With `workers`, as many processes compress and write the files while the network
    runs on; an error or Ctrl-C during inference still keeps the frames already computed."""
    # fork: the writers need h5py alone and must start before the data loader's workers
    # closing: a stop closes the generator, and so its progress bar, before the error line is printed
    with multiprocessing.get_context("fork").Pool(workers, ignore_interrupt) if workers else \
            contextlib.nullcontext() as writers, contextlib.closing(outputs):
        pending = collections.deque()
        try:
            for i, logits, target in outputs:
                frame = {"image_path": dataset.images[i], "frame_name": dataset.frame_name(i),
                         "has_label": dataset.has_label(i), **attrs(i), **image_identity(dataset.images[i])}
                job = (cache_path(cache_dir, i), *cache_arrays(torch.softmax(logits, 0)), logits.amax(0).cpu().numpy(),
                       target.numpy().astype(np.uint8), dataset.label_ids(i), frame,
                       torch.logsumexp(logits, 0).cpu().numpy())
                if writers is None:
                    write_cache_arrays(*job)
                    continue
                pending.append(writers.apply_async(write_cache_arrays, job))
                while len(pending) > 2 * workers:  # bounds the images held in memory
                    pending.popleft().get()
        finally:
            for result in pending:
                result.wait()
        for result in pending:
            result.get()


def read_cache(path, fields=None, float16_probs=False):
    """One image's cache as a dict: the requested arrays (default: FIELDS and the OPTIONAL_FIELDS it has; probs
    as float32, or as stored in float16 with `float16_probs`) plus every attribute. An optional field the file
    lacks is left out; max_prob and pred (TOP_FIELDS) come from the probs when the file lacks them.

    The segment search takes the float16 probs: its metrics read them as is, and converting the whole
    19 x 1024 x 2048 softmax to float32 takes longer than decompressing the file (bench/cache_size.py)."""
    with h5py.File(path, "r") as f:
        if fields is None:
            fields = FIELDS + OPTIONAL_FIELDS
        fields = [key for key in fields if key in f or key not in OPTIONAL_FIELDS]
        out = {key: f[key][...] for key in fields if key not in TOP_FIELDS or key in f}
        missing = [key for key in fields if key in TOP_FIELDS and key not in f]
        if missing:
            top = dict(zip(TOP_FIELDS, softmax_top(out["probs"] if "probs" in out else f["probs"][...])))
            out.update({key: top[key] for key in missing})
        out.update({key: _plain(value) for key, value in f.attrs.items()})
    if "probs" in out and not float16_probs:
        out["probs"] = out["probs"].astype(np.float32)
    return out


def read_attrs(path):
    with h5py.File(path, "r") as f:
        return {key: _plain(value) for key, value in f.attrs.items()}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def is_current(path, identity, labels=None, image=None):
    """True when `path` is a readable cache file of this format made by the checkpoint `identity` (and, when
    given, from the label files of identity `labels` and the image file `image`, see src.identity.same_image);
    an interrupted write leaves no file: writes are atomic."""
    try:
        with h5py.File(path, "r") as f:
            return (all(key in f for key in FIELDS) and f.attrs.get("checkpoint") == identity
                    and (labels is None or f.attrs.get("labels") == labels)
                    and (image is None or same_image({k: _plain(v) for k, v in f.attrs.items()}, image)))
    except OSError:
        return False


def checked_cache(cache_dir, num_images, identity, make_command, labels=None, images=None):
    """Paths of the `num_images` cache files of a run, after checking that all exist and were made by the
    checkpoint `identity` (see src.identity) from the labels `labels` (one identity per image, or None) and the
    image files `images` (or None); else UserError saying what is wrong and `make_command`."""
    paths = [cache_path(cache_dir, i) for i in range(num_images)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        found = len(glob.glob(os.path.join(cache_dir, "*.h5")))
        raise UserError(f"The inference cache {cache_dir} has {found} of {num_images} images "
                        f"(first missing: {os.path.basename(missing[0])}). Make it with: {make_command}")
    stale = [p for p in paths if not is_current(p, identity)]
    if stale:
        made_by = _attr(stale[0], "checkpoint")
        raise UserError(f"{len(stale)} files of the inference cache were made by another checkpoint or an older "
                        f"version: {stale[0]} by {made_by}, not {identity}. Rebuild them with: {make_command}")
    relabelled = [p for p, label in zip(paths, labels or [None] * num_images) if not is_current(p, identity, label)]
    if relabelled:
        raise UserError(f"the labels of {len(relabelled)} images changed since they were cached (first: "
                        f"{relabelled[0]}); cache them again with: {make_command}")
    changed = [(p, image) for p, image in zip(paths, images or [None] * num_images) if not is_current(p, identity,
                                                                                                     image=image)]
    if changed:
        raise UserError(f"{len(changed)} images changed since they were cached, or their cache predates image "
                        f"identities (first: {changed[0][1]}, cached in {changed[0][0]}); cache them again with: "
                        f"{make_command}")
    return paths


def cached_images(paths):
    """The image digest each cache file of `paths` records (checked_cache compares it with the image)."""
    return [str(read_attrs(path).get("image_digest")) for path in paths]


def _attr(path, key):
    """One attribute of a cache file, or a word saying that the file cannot be read."""
    try:
        return read_attrs(path).get(key)
    except OSError:
        return "an unreadable (damaged) file"
def has_field(path, field):
    """True when the cache file `path` holds the array `field` (e.g. logsumexp, which older caches lack)."""
    with h5py.File(path, "r") as f:
        return field in f
