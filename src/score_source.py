"""A checkpoint's inference cache as a score source: what stages 2 and 3 measure.

A score source is one interface for a checkpoint's cached scores (CheckpointScores, here) and any method's
score maps (src.external_maps.ExternalMaps, --scores_from), over the frames 0..n-1 of an evaluation set:

    len(source), source.dataset
    source.score_name            the name its results file the score under ("entropy", "score")
    source.score(i)              (H, W) float32 score map of frame i (higher: more anomalous)
    source.void(i)               (H, W) bool pixels the segment search leaves out (all of an unlabelled frame)
    source.identity()            what its segment search is made from (a search of other inputs is refused)
    source.row_identity()        the same, short, for a results row
    source.measured_scores()     the names of its scores that frames() can give
    source.searched(out_dir, make_command)
                                 (segments.json record, segment results) of its search in out_dir
    source.search, source.search_job(i, out_file, threshold)
                                 search(job) searches frame i's segments into out_file, in a worker process
    source.meta_filter(results, removed, threshold, reach)
                                 function (i, score) -> the map after the meta classifier removed `removed`
    source.frames(names)         (i, {name: map}, label) of every labelled frame, label (H, W) uint8 0 / 1 / 255:
                                 every metric is computed from these
    source.stored_dtype, source.unit_scores
                                 how smiyc reads the maps (None: as stored), and the scores in [0, 1]
"""
import os

import numpy as np

from src import layout
from src.cache import cached_images, checked_cache, checkpoint_identity, has_field, read_cache
from src.errors import UserError
from src.evaluation.measure import binary_labels
from src.evaluation.scores import SCORE_INPUTS, SCORES, anomaly_score, meta_classified_score
from src.evaluation.sml_stats import load_sml_stats
from src.external_maps import meta_filtered_score, removed_mask
from src.files import load_json
from src.identity import label_identities, search_identity
from src.metaseg.segment_search import load_all_segments, save_segments, segment_search


def _search_cached(job):
    cache_file, out_file, threshold, ood_index = job
    c = read_cache(cache_file, ("probs", "entropy", "gt_train", "gt_label"), float16_probs=True)
    save_segments(out_file, segment_search(c["probs"], c["gt_train"], c["gt_label"], threshold, ood_index,
                                           c["entropy"]))


class CheckpointScores:
    """The inference cache of one checkpoint on `dataset` (`cache_files`, checked, one per frame): the score is
    its normalised entropy; frames() gives the other scores of its softmax too (src.evaluation.scores; SML with
    `class_stats`)."""
    score_name = "entropy"
    stored_dtype = np.float16  # smiyc reads the scores as --export_smiyc stores them
    unit_scores = ("entropy", "max_softmax")

    def __init__(self, cache_files, dataset, checkpoint, class_stats=None, make_command=""):
        """make_command: what rebuilds the cache (-prepare), for the line that says how to add a missing score."""
        self.paths, self.dataset, self.checkpoint, self.class_stats = cache_files, dataset, checkpoint, class_stats
        self.make_command = make_command

    def __len__(self):
        return len(self.paths)

    def score(self, i):
        return read_cache(self.paths[i], ("entropy",))["entropy"]

    def void(self, i):
        return read_cache(self.paths[i], ("gt_train",))["gt_train"] == 255

    def identity(self):
        return search_identity(checkpoint_identity(self.checkpoint), label_identities(self.dataset),
                               cached_images(self.paths))

    row_identity = identity

    def measured_scores(self):
        """Every score of the softmax whose inputs exist; each one left out with a line saying how to add it."""
        scores = [s for s in SCORES if s != "sml" or self.class_stats is not None]
        if self.class_stats is None:
            print(f"SML skipped for {self.checkpoint}: measure its statistics with `python evaluation.py --sml_stats` "
                  "and the flags of this run")
        if not has_field(self.paths[0], "logsumexp"):
            scores.remove("energy")
            print(f"Energy skipped for {self.checkpoint}: its cache predates the cached logsumexp of the logits; "
                  f"rebuild it with {self.make_command}")
        return scores

    search = staticmethod(_search_cached)

    def searched(self, out_dir, make_command):
        """(segments.json record, segment results of every frame) of the search of this cache in `out_dir`;
        UserError naming `make_command` (-segment) when results are missing or come from other inputs."""
        path = layout.segments_record(out_dir)
        record = load_json(path, f"search again with: {make_command}") if os.path.isfile(path) else {}
        identity = self.identity()
        if record.get("checkpoint") not in (None, identity):
            raise UserError(f"the segment results in {out_dir} come from the cache of another checkpoint or other "
                            f"labels ({record['checkpoint']}, not {identity}); search again with: {make_command}")
        return record, load_all_segments(out_dir, len(self), make_command)

    def search_job(self, i, out_file, threshold):
        return self.paths[i], out_file, threshold, self.dataset.train_id_out

    def meta_filter(self, results, removed, threshold, reach):
        """With reach 0 each removed pixel gets t x entropy (`meta_classified_score`, the paper row's rule); above
        0 the removal takes the connected pixels down to the reach as well (`meta_filtered_score`, entropy >= 0)."""
        def meta_filter(i, entropy):
            if reach == 0:
                return meta_classified_score(entropy, removed_mask(results[i]["components"], removed[i]), threshold)
            return meta_filtered_score(entropy, results[i]["components"], removed[i], self.void(i), 0.0, threshold,
                                       reach)
        return meta_filter

    def frames(self, names=("entropy",)):
        # each score reads only its own arrays: the 19-channel softmax is most of a file, and none needs all of it
        fields = list(dict.fromkeys(["gt_train", *(key for name in names for key in SCORE_INPUTS.get(name, ()))]))
        for i, path in enumerate(self.paths):
            cache = read_cache(path, fields)
            if not cache["has_label"]:
                continue
            maps = {name: anomaly_score(name, cache, self.class_stats) for name in names}
            yield i, maps, binary_labels(cache["gt_train"], self.dataset.train_id_in, self.dataset.train_id_out)


def checked_scores(out, dataset, epoch, make_command):
    """The inference cache of checkpoint `epoch` of the layout `out` (src/layout.py) as a score source, with the
    checkpoint's SML statistics when measured, after checking that the cache is complete and made by that
    checkpoint from the frames' current labels and images; else UserError naming `make_command` (-prepare)."""
    checkpoint = out.evaluated_checkpoint(epoch)
    files = checked_cache(out.cache_dir(epoch), len(dataset), checkpoint_identity(checkpoint), make_command,
                          label_identities(dataset), dataset.images)
    return CheckpointScores(files, dataset, checkpoint, load_sml_stats(checkpoint), make_command)
