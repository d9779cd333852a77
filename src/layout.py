"""Every output path and file name of meta-ood, one template each, all under one io root:

<io_root>/weights/cityscapes/<model>_epoch_<e>.pth                          stage 1, -train Cityscapes
<io_root>/weights/<target>/<model>_epoch_<e>_alpha_<a>.pth                 stage 1, OoD training
<io_root>/<valset>/<run>/cache/00000.h5 ...                                -prepare
<io_root>/<valset>/<run>/segments_t<t>/00000.npz, segments.json            -segment
<io_root>/<valset>/<run>/segments_t<t>/meta_classifier.npz, .json          -removal
<io_root>/<valset>/<run>/oodmc/train/, svm.npz, scores/                    -moment, -SVM, evaluation -moment
<io_root>/results/<valset>/<run>/t<t>/results.json, .md, roc.png, pr.png   evaluation -pixel -segment
<io_root>/results/<valset>/<run>/oodmc.json, .md                           evaluation -moment
<io_root>/<valset>/external/<maps>/segments_<t or q>/...                    --scores_from, stage 2
<io_root>/results/<valset>/external_<maps>/<t or q>/results.json ...        --scores_from, stage 3

<run> is <model>_baseline (epoch 0) or <model>_<target>_epoch_<e>_alpha_<a>; <valset> carries its split
(Fishyscapes_Static, LostAndFound_testNoKnown); <maps> is the --scores_from folder's name and a hash of its path.
"""
import dataclasses
import hashlib
import os

from src.errors import UserError

SEGMENTS_RECORD = "segments.json"  # what the segment files of a folder were searched from and at
META_CLASSIFIER = "meta_classifier"  # .npz: which segments it removes; .json: its scores and settings
SVM = "svm.npz"
RESULTS = "results"  # .json and .md
OODMC_REPORT = "oodmc"  # .json and .md


@dataclasses.dataclass(frozen=True)
class Layout:
    """The outputs of one set of settings (config.layout builds it from them)."""
    io_root: str
    valset: str  # with its split, as named in the outputs
    model: str
    optim_target: str
    pareto_alpha: float
    init_ckpt: str  # '' for <io_root>/weights/<model>.pth, 'none' for no checkpoint
    threshold: float  # the entropy threshold t (-threshold)
    scores_from: str
    score_threshold: float
    score_quantile: float

    def init_checkpoint(self):
        """The checkpoint trained on Cityscapes alone (epoch 0 of OoD training); '' when init_ckpt is 'none'."""
        if self.init_ckpt == "none":
            return ""
        return self.init_ckpt or os.path.join(self.io_root, "weights", f"{self.model}.pth")

    def checkpoint(self, epoch, trainset="Cityscapes+COCO"):
        """Where training on `trainset` saves epoch `epoch`; epoch 0 of OoD training is the init checkpoint."""
        weights = os.path.join(self.io_root, "weights")
        if trainset == "Cityscapes":
            return os.path.join(weights, "cityscapes", f"{self.model}_epoch_{epoch}.pth")
        if epoch == 0:
            return self.init_checkpoint()
        return os.path.join(weights, self.optim_target, f"{self.model}_epoch_{epoch}_alpha_{self.pareto_alpha}.pth")

    def evaluated_checkpoint(self, epoch):
        """The checkpoint of `epoch`, or UserError when there is none."""
        path = self.checkpoint(epoch)
        if not path:
            raise UserError("-epoch 0 evaluates init_ckpt, but --init_ckpt is 'none'; pass the baseline checkpoint")
        if not os.path.isfile(path):
            made_by = ("put the Cityscapes checkpoint there or pass --init_ckpt" if epoch == 0 else
                       f"train it with `python ood_training.py -nepochs {epoch}` or pick another -epoch")
            raise UserError(f"checkpoint {path} does not exist: {made_by}")
        return path

    def run_name(self, epoch):
        if epoch == 0:
            return f"{self.model}_baseline"
        return f"{self.model}_{self.optim_target}_epoch_{epoch}_alpha_{self.pareto_alpha}"

    def run_dir(self, epoch):
        """Inference cache, segments, meta classifier and OODMC files of one checkpoint on the set."""
        return os.path.join(self.io_root, self.valset, self.run_name(epoch))

    def cache_dir(self, epoch):
        return os.path.join(self.run_dir(epoch), "cache")

    def segments_dir(self, epoch):
        """Segments and meta classifier of one checkpoint at the entropy threshold t."""
        return os.path.join(self.run_dir(epoch), f"segments_t{self.threshold}")

    def oodmc_dir(self, epoch):
        return os.path.join(self.run_dir(epoch), "oodmc")

    def svm_file(self, epoch):
        return os.path.join(self.oodmc_dir(epoch), SVM)

    def oodmc_features_dir(self, epoch):
        return os.path.join(self.oodmc_dir(epoch), "train")

    def oodmc_scores_dir(self, epoch):
        return os.path.join(self.oodmc_dir(epoch), "scores")

    def results_dir(self, epoch):
        """The OODMC report of one checkpoint."""
        return os.path.join(self.io_root, "results", self.valset, self.run_name(epoch))

    def threshold_results_dir(self, epoch):
        """Pixel and segment results of one checkpoint at t (the segment numbers depend on it)."""
        return os.path.join(self.results_dir(epoch), f"t{self.threshold}")

    def scores_setting(self):
        """t<score threshold>, or q<quantile> with --score_quantile: the segment setting of --scores_from outputs."""
        return f"q{self.score_quantile}" if self.score_quantile > 0 else f"t{self.score_threshold}"

    def scores_name(self):
        """The --scores_from folder's base name, to read, and a short hash of its real path, so that two folders of
        one name (a/maps, b/maps) never share (or delete) each other's outputs."""
        real = os.path.realpath(self.scores_from)
        return f"{os.path.basename(real)}_{hashlib.sha256(real.encode()).hexdigest()[:8]}"

    def external_segments_dir(self):
        """Segments and meta classifier of the --scores_from maps at t (or the score quantile)."""
        return os.path.join(self.io_root, self.valset, "external", self.scores_name(),
                            f"segments_{self.scores_setting()}")

    def external_results_dir(self):
        return os.path.join(self.io_root, "results", self.valset, f"external_{self.scores_name()}",
                            self.scores_setting())

    def source_segments_dir(self, epoch):
        """The segments of this layout's score source: the --scores_from maps' when set, else checkpoint epoch's."""
        return self.external_segments_dir() if self.scores_from else self.segments_dir(epoch)

    def source_results_dir(self, epoch):
        """The results of this layout's score source: the --scores_from maps' when set, else checkpoint epoch's."""
        return self.external_results_dir() if self.scores_from else self.threshold_results_dir(epoch)


def segments_record(segments_dir):
    return os.path.join(segments_dir, SEGMENTS_RECORD)


def meta_classifier_file(segments_dir, ext="npz"):
    return os.path.join(segments_dir, f"{META_CLASSIFIER}.{ext}")


def results_file(results_dir, ext="json"):
    return os.path.join(results_dir, f"{RESULTS}.{ext}")
