"""Any method's anomaly score maps on an evaluation set: reading them frame by frame, the segment search on
them, the exact score quantile, and the (score, label) pairs every metric is computed from.

The maps are in the SegmentMeIfYouCan submission layout (src/evaluation/score_maps.py). Labels come from
the dataset's train-id label files; frames without labels are all void. meta_classification.py and
evaluation.py call this with `--scores_from DIR`.
"""
import dataclasses
import hashlib
import json
import os

import h5py
import numpy as np
from PIL import Image
from scipy import ndimage

from src import layout
from src.errors import UserError
from src.cache import read_cache
from src.evaluation.measure import binary_labels
from src.evaluation.pixel_metrics import float_of_key, float_order_keys
from src.files import load_json
from src.identity import label_identities
from src.evaluation.score_maps import check_score_map_shapes, read_score_map, score_map_files
from src.evaluation.scores import below
from src.metaseg.metrics import compute_metrics_components
from src.metaseg.score_segments import (EIGHT_CONNECTED, at_least, ground_truth_components, score_segment_metrics,
                                        segment_targets)
from src.metaseg.segment_search import load_all_segments, save_segments



def frame_train_ids(dataset, i):
    """(H, W) uint8 train ids of frame i (255 void), or None for a frame without labels. The dataset's own
    load_target reads them, so a split that remaps its labels (LostAndFound testNoKnown) is read as it defines."""
    if not dataset.has_label(i):
        return None
    return np.array(dataset.load_target(i, None))


def frame_shape(dataset, i):
    """(H, W) of frame i, from its image header (its labels have the same size; a split that remaps them, such as
    LostAndFound testNoKnown, has no train-id file to read)."""
    with Image.open(dataset.images[i]) as image:
        return image.height, image.width


def _search_map(job):
    score_file, dataset, i, cache_file, out_file, threshold, ood_index = job
    score = read_score_map(score_file)
    gt_train = frame_train_ids(dataset, i)  # the dataset's own label rule (testNoKnown remaps the label ids)
    probs = None if cache_file is None else read_cache(cache_file, ("probs",), float16_probs=True)["probs"]
    result = search_frame(score, gt_train, threshold, ood_index, probs=probs)
    result["score_min"] = np.float32(score.min())  # the lowest score, the meta filter's floor
    save_segments(out_file, result)


class ExternalMaps:
    """The score maps of `directory` for every frame of `dataset` as a score source (src/score_source.py),
    checked once: every frame has a file, and every file a `value` of its frame's shape (else one UserError
    naming them). softmax_cache: None, or the evaluated checkpoint's cache files, whose MetaSeg metrics the
    segment search adds (metric family "softmax")."""
    score_name = "score"
    stored_dtype = None  # the benchmark reads each map as its file stores it
    unit_scores = ("score",)  # meta-ood tries them, and leaves out maps outside [0, 1]

    def __init__(self, directory, dataset, softmax_cache=None):
        self.directory = directory
        self.dataset = dataset
        self.softmax_cache = softmax_cache
        self.paths = score_map_files(directory, [dataset.frame_name(i) for i in range(len(dataset))])
        check_score_map_shapes(self.paths, [frame_shape(dataset, i) for i in range(len(dataset))])

    def __len__(self):
        return len(self.paths)

    def score(self, i):
        """(H, W) float32 score map of frame i."""
        return read_score_map(self.paths[i])

    def stored_score(self, i):
        """(H, W) score map of frame i as its file stores it (float16, float32 or float64)."""
        return read_score_map(self.paths[i], as_stored=True)

    def void(self, i, gt_train=None):
        """(H, W) bool void pixels of frame i (all of a frame without labels)."""
        gt_train = frame_train_ids(self.dataset, i) if gt_train is None else gt_train
        if gt_train is None:
            return np.ones(frame_shape(self.dataset, i), dtype=bool)
        return gt_train == self.dataset.ignore_index

    def frames(self, names=("score",)):
        """(i, {"score": the map as its file stores it (dtype and values, as the benchmark reads it)}, label) of
        every labelled frame."""
        for i in range(len(self)):
            gt_train = frame_train_ids(self.dataset, i)
            if gt_train is not None:
                yield i, {"score": self.stored_score(i)}, binary_labels(gt_train, self.dataset.train_id_in,
                                                                        self.dataset.train_id_out)

    search = staticmethod(_search_map)

    def search_job(self, i, out_file, threshold):
        cache_file = None if self.softmax_cache is None else self.softmax_cache[i]
        return self.paths[i], self.dataset, i, cache_file, out_file, threshold, self.dataset.train_id_out

    def meta_filter(self, results, removed, threshold, reach):
        """The maps after the meta classifier (`meta_filtered_score`): removed pixels move below the threshold,
        above the midpoint to the lowest score of all maps (each result records its map's lowest)."""
        low = min(float(r["score_min"]) for r in results)
        return lambda i, score: meta_filtered_score(score, results[i]["components"], removed[i], self.void(i), low,
                                                    threshold, reach)

    def identity(self):
        """What a segment search of the maps is made from: the directory, the size and modification time of every
        map, and the contents of the frames' label files (fixed labels make other targets and ground truth)."""
        stats = [os.stat(p) for p in self.paths]
        labels = hashlib.sha256("\n".join(label_identities(self.dataset)).encode()).hexdigest()[:16]
        return {"directory": os.path.abspath(self.directory),
                "files": [[os.path.basename(p), s.st_size, s.st_mtime_ns] for p, s in zip(self.paths, stats)],
                "labels": labels}

    def searched(self, out_dir, make_command):
        """(segments.json record, segment results of every frame) of the search of the maps in `out_dir`;
        UserError naming `make_command` (-segment) when there is none or it was made from other (or since changed)
        score maps or labels."""
        path = layout.segments_record(out_dir)
        if not os.path.isfile(path):
            raise UserError(f"no segments of the score maps in {out_dir}, --scores_from; search them with: {make_command}")
        record = load_json(path, f"search again with: {make_command}")
        if record["checkpoint"]["scores_from"] != self.identity():
            raise UserError(f"the segments in {out_dir} come from other or since changed score maps than those in "
                            f"{self.directory}, --scores_from, or from labels changed since; search again with: "
                            f"{make_command}")
        return record, load_all_segments(out_dir, len(self), make_command)

    def row_identity(self):
        return f"score maps {hashlib.sha256(json.dumps(self.identity()).encode()).hexdigest()[:16]}"

    @staticmethod
    def measured_scores():
        return ["score"]

    def check_values(self):
        """Read every map once: UserError naming the maps that hold NaN (no metric has a meaning then); else a
        MapValues of the range of the scores, their dtypes and the maps holding +inf."""
        nan, posinf, dtypes = [], [], set()
        low, high = np.inf, -np.inf
        for i, path in enumerate(self.paths):
            with h5py.File(path, "r") as f:
                dtypes.add(f["value"].dtype.name)
            score = self.score(i)
            missing = int(np.isnan(score).sum())
            if missing:
                nan.append(f"{os.path.basename(path)}: {missing} pixels")
                continue
            finite = score[np.isfinite(score)]
            if finite.size < score.size and np.isposinf(score).any():
                posinf.append(os.path.basename(path))
            if finite.size:
                low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        if nan:
            raise UserError(f"--scores_from: {len(nan)} of {len(self.paths)} score maps in {self.directory} hold NaN "
                            f"({_shown(nan)}); write a score at every pixel (e.g. the map's lowest where the method "
                            "gives none)")
        return MapValues(low, high, sorted(dtypes), posinf)


def check_search_values(maps, threshold, quantile):
    """The maps' values fit a segment search at --score_threshold `threshold` (or at the score quantile `quantile` when
    above 0): finite segment metrics, and a threshold inside the scores' range; else UserError saying the range
    and what to pass. Returns the range as text."""
    values = maps.check_values()
    if values.posinf:
        raise UserError(f"--scores_from: {len(values.posinf)} of {len(maps)} score maps in {maps.directory} hold +inf "
                        f"({', '.join(values.posinf[:5])}), which makes the metrics of their segments infinite and the "
                        "meta classifier untrainable; write finite scores (e.g. +inf replaced by the largest finite "
                        "score of the maps)")
    if quantile > 0:
        return values.describe()
    flag = f"--score_threshold {threshold}"
    hint = "pass a threshold inside the scores' range, or --score_quantile q (segments at the q quantile of the scores)"
    if values.is_integer() and values.high > 1 and 0 < threshold <= 1:
        # on integer scores a threshold in (0, 1] keeps every pixel above 0: one meant for scores in [0, 1]
        # applied to, e.g., 0..255
        raise UserError(f"{flag} on the integer score maps in {maps.directory} (scores {values.describe()}) keeps "
                        "every pixel above 0; pass a threshold in the maps' units (e.g. --score_threshold "
                        f"{values.high / 2:g}), --score_quantile q (segments at the q quantile of the scores), or "
                        f"write float scores in [0, 1] (e.g. value / {values.high:g})")
    if threshold > values.high:
        raise UserError(f"{flag} lies above every score of the maps in {maps.directory} ({values.describe()}), so "
                        f"no segment would be found; {hint}")
    if threshold <= values.low:
        raise UserError(f"{flag} lies at or below every score of the maps in {maps.directory} ({values.describe()}), "
                        f"so all pixels would be segments; {hint}")
    return values.describe()


@dataclasses.dataclass
class MapValues:
    """What ExternalMaps.check_values found: the lowest and highest finite score, the maps' dtype names, and the
    maps (file names) that hold +inf."""
    low: float
    high: float
    dtypes: list
    posinf: list

    def describe(self):
        return f"{self.low:.6g} .. {self.high:.6g}, {'/'.join(self.dtypes)}"

    def is_integer(self):
        return any(np.dtype(name).kind in "iu" for name in self.dtypes)


def _shown(names, limit=5):
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _order_keys(values):
    """uint32 keys of float32 values in the same order as the values (float_order_keys, shifted to unsigned)."""
    return (float_order_keys(values).astype(np.int64) + 2 ** 31).astype(np.uint32)


def _value_of_key(key):
    return float(float_of_key(int(key) - 2 ** 31))


def score_quantile(maps, q):
    """The q-quantile of the scores of the non-void pixels of all frames, exact in two passes with bounded
    memory (a histogram of the upper 16 bits of each float32, then one of the lower 16 bits inside the bin
    that holds the quantile). Definition: the value at rank ceil(q N) of the N sorted scores (the first
    for q = 0), numpy's method "inverted_cdf". Returns a Python float."""
    upper = np.zeros(2 ** 16, dtype=np.int64)
    for i in range(len(maps)):
        keys = _order_keys(maps.score(i)[~maps.void(i)])
        upper += np.bincount(keys >> 16, minlength=2 ** 16)
    total = int(upper.sum())
    if total == 0:
        raise ValueError("no frame has a pixel outside the void, so the scores have no quantile")
    rank = max(int(np.ceil(total * q)) - 1, 0)  # 0-based
    cumulative = np.cumsum(upper)
    bin_ = int(np.searchsorted(cumulative, rank, side="right"))
    rank -= int(cumulative[bin_ - 1]) if bin_ else 0
    lower = np.zeros(2 ** 16, dtype=np.int64)
    for i in range(len(maps)):
        keys = _order_keys(maps.score(i)[~maps.void(i)])
        lower += np.bincount(keys[(keys >> 16) == bin_] & 0xFFFF, minlength=2 ** 16)
    fine = int(np.searchsorted(np.cumsum(lower), rank, side="right"))
    return _value_of_key((bin_ << 16) | fine)


def search_frame(score, gt_train, threshold, ood_index, ignore_index=255, probs=None):
    """Segments of one frame's score map with their metrics, in the layout of segment_search.

    score: (H, W) float32; gt_train: (H, W) uint8 train ids, or None for an unlabelled frame (all void);
    ood_index: train id of ground-truth OoD; probs: None, or the (C, H, W) softmax of the project's network
    on the frame, whose MetaSeg metrics of the same segments are added (family "softmax").
    Returns a dict: metrics, gt_metrics (name -> list per segment), components, gt_components ((H, W) int32).
    """
    if gt_train is None:
        gt_train = np.full(score.shape, ignore_index, dtype=np.uint8)
    void = gt_train == ignore_index
    metrics, components = score_segment_metrics(score, void, threshold)
    gt_ood = gt_train == ood_index
    metrics.update(segment_targets(components, gt_ood))
    if probs is not None:
        softmax_metrics, softmax_components = compute_metrics_components(probs, gt_train, components != 0, ood_index)
        if not np.array_equal(softmax_components, components):
            raise AssertionError("MetaSeg found other segments than the score-map search on the same mask")
        metrics.update({key: value for key, value in softmax_metrics.items() if key != "prc"})
    gt_components, gt_metrics = ground_truth_components(gt_ood, components != 0)
    return {"metrics": {k: np.asarray(v).tolist() for k, v in metrics.items()},
            "gt_metrics": {k: v.tolist() for k, v in gt_metrics.items()},
            "components": components, "gt_components": gt_components}


def removed_mask(components, removed):
    """(H, W) bool pixels of the segments whose entry of `removed` ((n,) bool, id order) is True."""
    return np.isin(np.abs(components), np.flatnonzero(removed) + 1)


def filtered_score(score, removed_pixels, low, threshold):
    """The score map after the meta classifier: the pixels of removed segments (each >= threshold, the segment
    search's) moved into [m, threshold) in their order, m = (low + threshold) / 2 and low the lowest score of
    all maps: (H, W) float32.

    The same rule as the entropy's `meta_classified_score`, for scores of any range: a removed segment ranks
    below every kept one and a search at `threshold` would not find it again, but above the pixels that score
    below m, so a true object removed by mistake still enters the ROC and PR curves before most of the road
    does and FPR95 stays meaningful (setting removed pixels to `low` made it read 100% whenever 5% of the OoD
    pixels were removed). With nothing removed the map is unchanged, bit for bit.
    """
    out = np.array(score, dtype=np.float32)
    span = (np.float64(threshold) - low) / 2
    if not np.isfinite(span) or span <= 0:  # a map holding -inf, or a threshold at the lowest score
        out[removed_pixels] = low
        return out
    excess = out[removed_pixels].astype(np.float64) - threshold  # >= 0, so the fraction below is in [0, 1)
    moved = threshold - span + span * excess / (excess + span)
    out[removed_pixels] = np.minimum(moved.astype(np.float32), below(threshold))
    return out


def removal_region(score, components, removed, void, floor):
    """(H, W) bool: the pixels a removal takes away at reach down to `floor`: the removed segments, and the
    8-connected components of the non-void pixels scoring >= floor that hold a removed segment and no kept one.

    A segment is only the part of a blob scoring >= t; a threshold below t (the leaderboard's best-F1 one)
    sees the blob's rim as well, so moving the segment alone leaves a component there. A component at
    `floor` that also holds a kept segment keeps its rim (only the removed segments' pixels go).
    components: (H, W) segment ids (+-id, 0 none); removed: (n,) bool, id order; void: (H, W) bool."""
    removed_pixels = removed_mask(components, removed)
    labels, n = ndimage.label(at_least(score, floor) & ~void, structure=EIGHT_CONNECTED)
    with_removed = np.bincount(labels[removed_pixels], minlength=n + 1) > 0
    with_kept = np.bincount(labels[(components != 0) & ~removed_pixels], minlength=n + 1) > 0
    with_removed[0] = False
    return removed_pixels | (with_removed & ~with_kept)[labels]


def meta_filtered_score(score, components, removed, void, low, threshold, reach):
    """The map of a "+ meta classifier" row, which it scores and exports: (H, W) float32.

    reach 0: the pixels of removed segments move into [m, threshold) in their order (`filtered_score`).
    reach in (0, 1]: the removal also takes the connected pixels down to floor = threshold - reach (threshold -
    low) (`removal_region`), and they all move into [(low + floor) / 2, floor) in their order, so a threshold
    down to the floor sees no component of a removed segment, while a wrongly removed object still ranks above
    every pixel below (low + floor) / 2 and FPR95 stays meaningful. A map holding -inf keeps reach 0."""
    floor = threshold - reach * (threshold - low)
    if reach == 0 or not np.isfinite(floor):
        return filtered_score(score, removed_mask(components, removed), low, threshold)
    return filtered_score(score, removal_region(score, components, removed, void, floor), low, floor)
