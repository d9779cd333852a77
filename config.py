"""Every setting of meta-ood, its default and its help text.

Each dataclass is one concern. An entry script lists the groups it uses; `build_parser` turns each of
their fields into a flag (`--<field>`, plus the published short alias declared next to it), and
`parse_config` returns the parsed values as one frozen `Config`. Dataset roots derive from
`data_root`, outputs from `io_root`.
"""
import argparse
import dataclasses
import math
import os
import shlex
from dataclasses import dataclass, field

from src.errors import UserError
from src.layout import Layout

NUM_CLASSES = 19  # the Cityscapes train classes
MODELS = ("DeepLabV3+_WideResNet38", "DualGCNNet_res50", "DeepLabV3+_TinyResNet")
TRAINSETS = ("Cityscapes+COCO", "Cityscapes")
VALSETS = ("LostAndFound", "Fishyscapes", "RoadAnomaly21", "RoadObstacle21")
PROTOCOLS = ("exact", "meta-ood", "smiyc", "all")
EPOCHS = 4  # OoD training epochs: the released checkpoints were trained for 4, and the scripts evaluate the last
# (segsize, instsize) of the SegmentMeIfYouCan component metrics: obstacle-type and anomaly-type sets
COMPONENT_SIZES = {"LostAndFound": (50, 10), "RoadObstacle21": (50, 10), "Fishyscapes": (500, 100),
                   "RoadAnomaly21": (500, 100)}


def setting(default, help, flags=(), choices=None, low=None, high=None):
    """A config field: its default, help text, short aliases and legal values."""
    meta = dict(help=help, flags=tuple(flags), choices=choices, low=low, high=high)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Paths:
    data_root: str = setting("./datasets", "root of every dataset (Cityscapes, COCO, ...); see docs/data.md for the layout")
    io_root: str = setting("./io", "root of every output: weights, caches, segment metrics, results")

    @property
    def cityscapes(self):
        return os.path.join(self.data_root, "cityscapes")

    @property
    def coco(self):
        return os.path.join(self.data_root, "COCO", "2017")

    @property
    def lost_and_found(self):
        return os.path.join(self.data_root, "lost_and_found")

    @property
    def fishyscapes(self):
        return os.path.join(self.data_root, "fishyscapes")

    @property
    def road_anomaly21(self):
        return os.path.join(self.data_root, "dataset_AnomalyTrack")

    @property
    def road_obstacle21(self):
        return os.path.join(self.data_root, "dataset_ObstacleTrack")

    @property
    def cropped_coco(self):
        return os.path.join(self.data_root, "cropped_coco")

    @property
    def cs_coco_embedding(self):
        return os.path.join(self.data_root, "cs_coco_embedding")


@dataclass(frozen=True)
class Run:
    device: str = setting("auto", "auto (CUDA if available, else CPU), cpu, cuda or cuda:N")
    amp: str = setting("auto", "mixed precision: auto (on for CUDA), on (CUDA only) or off", choices=("auto", "on", "off"))
    seed: int = setting(0, "random seed of data order, crops, sampling and MC dropout", low=0)
    num_workers: int = setting(2, "worker processes for data loading and segment search", low=0)


@dataclass(frozen=True)
class Model:
    MODEL: str = setting(MODELS[0], "network architecture", flags=("-model",), choices=MODELS)
    init_ckpt: str = setting("", "checkpoint trained on Cityscapes that OoD training starts from and that epoch 0 "
                                 "evaluates (default: <io_root>/weights/<MODEL>.pth)")
    optim_target: str = setting("entropy", "OoD training objective: entropy (maximise softmax entropy on OoD pixels) "
                                           "or logit (the max-logit variant for SML)", choices=("entropy", "logit"))
    pareto_alpha: float = setting(0.9, "weight of the OoD objective (the paper's lambda), in [0, 1]",
                                  flags=("-alpha",), low=0.0, high=1.0)


@dataclass(frozen=True)
class Training:
    TRAINSET: str = setting(TRAINSETS[0], "Cityscapes+COCO: OoD training; Cityscapes: plain cross-entropy training "
                                          "of a baseline (no OoD data)", flags=("-train",), choices=TRAINSETS)
    training_starting_epoch: int = setting(0, "0: start from init_ckpt (or random weights if it is 'none'); "
                                              "e > 0: resume from the epoch-e checkpoint", flags=("-epoch",), low=0)
    num_training_epochs: int = setting(EPOCHS, "train until this epoch (a resumed run stops there too)",
                                       flags=("-nepochs",), low=1)
    ood_subsampling_factor: float = setting(0.1, "COCO images per epoch = factor x number of Cityscapes train images, "
                                                 "redrawn each epoch", low=0.0)
    learning_rate: float = setting(1e-5, "Adam learning rate (constant)", flags=("-lr",), low=0.0)
    crop_size: int = setting(480, "side of the random square training crop", flags=("-crop",), low=1)
    batch_size: int = setting(8, "images per batch (per process under torchrun)", low=1)
    embedding_img_interval: int = setting(0, "k > 0: batch b is replaced by a cs_coco_embedding batch when b %% k == 0; "
                                             "0: off", low=0)
    coco_background: str = setting("road", "label of non-object COCO pixels: road (class 0, as published) or ignore",
                                   choices=("road", "ignore"))
    logit_limit: float = setting(1e4, "stop training when any |logit| exceeds this (the logit loss is unbounded)",
                                 low=0.0)


@dataclass(frozen=True)
class EvalSet:
    VALSET: str = setting(VALSETS[0], "evaluation dataset", flags=("-val",), choices=VALSETS)
    fs_split: str = setting("Static", "Fishyscapes split", choices=("Static", "LostAndFound"))
    laf_split: str = setting("test", "LostAndFound frames: test (all 1203 test frames, hazards OoD) or testNoKnown (the "
                                     "SegmentMeIfYouCan leaderboard's 1043 frames without people and bicycles, every "
                                     "object OoD)", choices=("test", "testNoKnown"))
    val_epoch: int = setting(EPOCHS, "checkpoint to evaluate: epoch e of OoD training, 0 = init_ckpt (the baseline); "
                                     "the default is -nepochs' default",
                             flags=("-epoch",), low=0)
    entropy_threshold: float = setting(0.7, "normalised-entropy threshold of the OoD segment search, in [0, 1]",
                                       flags=("-threshold",), low=0.0, high=1.0)


@dataclass(frozen=True)
class MetaStages:
    metaseg_prepare: bool = setting(False, "run the checkpoint on every VALSET image and cache the softmax",
                                    flags=("-prepare",))
    segment_search: bool = setting(False, "find OoD segments and compute their metrics", flags=("-segment",))
    fp_removal: bool = setting(False, "train the meta classifier and remove false-positive segments",
                               flags=("-removal",))
    moment: bool = setting(False, "OODMC: compute MC-dropout moment features", flags=("-moment",))
    SVM: bool = setting(False, "OODMC: train the linear SVM on the moment features", flags=("-SVM",))
    meta_cv: str = setting("kfold", "meta-classifier cross-validation: kfold (10 folds grouped by image) or loo "
                                    "(leave one segment out, as published)", choices=("kfold", "loo"))
    meta_classifier: str = setting("boosting", "model and cut of the meta classifier: paper (logistic regression, "
                                            "removes at probability >= 0.5), logistic_f1 (the cut chosen by nested "
                                            "grouped cross-validation for the component F1 at -threshold), boosting "
                                            "(gradient-boosted trees, cut 0.5) or boosting_f1; all but paper need "
                                            "--meta_cv kfold",
                                   choices=("paper", "logistic_f1", "boosting", "boosting_f1"))


@dataclass(frozen=True)
class EvalStages:
    pixel_eval: bool = setting(False, "pixel-level AUROC, AP and FPR95", flags=("-pixel",))
    segment_eval: bool = setting(False, "segment-level FP / FN counts and component metrics", flags=("-segment",))
    moment: bool = setting(False, "evaluate the OODMC SVM", flags=("-moment",))
    sml_stats: bool = setting(False, "measure the SML class statistics of the checkpoint on Cityscapes train")
    num_visualizations: int = setting(8, "Figure-7 overlays written for the N frames that show the most (largest true "
                                         "segment, most removed false positives, most removed true segments)", low=0)
    visualize_frames: str = setting("", "comma-separated frame names to draw overlays of instead (the names of "
                                        "the results' overlays/ files)")
    export_smiyc: str = setting("", "directory to write SegmentMeIfYouCan submission files to (off when empty)")
    export_meta: bool = setting(False, "with --export_smiyc, write the '+ meta classifier' row's maps (the entropy "
                                       "after the meta classifier) instead of the entropy; --scores_from always "
                                       "writes its maps after the meta classifier")
    removal_reach: float = setting(0.25, "how far below -threshold t a removed segment takes its connected pixels "
                                        "along, as a fraction r of the way from t down to the lowest score: 0 the "
                                        "segment alone (moved just below t), r > 0 every pixel connected to it that "
                                        "scores >= t - r (t - lowest), unless it touches a kept segment, in [0, 1]",
                                   low=0.0, high=1.0)
    protocol: str = setting("exact", "how pixel metrics are computed: exact (every pixel, as sklearn), meta-ood (the "
                                     "paper's 100 bins), smiyc (the SegmentMeIfYouCan benchmark's code) or all three",
                            choices=PROTOCOLS)


@dataclass(frozen=True)
class Oodmc:
    moment_num: int = setting(128, "stochastic MC-dropout forward passes per image", low=2)
    moment_order: int = setting(4, "highest central moment of the samples", low=2)
    moment_weight: float = setting(0.5, "weight w of the moments against (1 - w) of the entropy, in [0, 1]",
                                   low=0.0, high=1.0)
    moment_source: str = setting("logits", "moments of the logits (as described) or the softmax (as the fork's code)",
                                 choices=("logits", "softmax"))
    max_batch_size_for_moment: int = setting(16, "MC copies per forward pass", low=1)
    svm_points_num: int = setting(500000, "SVM training pixels, half in-distribution and half OoD", low=2)
    SVM_eval_subsize: int = setting(100, "images the OODMC evaluation runs on", low=1)


@dataclass(frozen=True)
class ScoresFrom:
    scores_from: str = setting("", "directory of any method's anomaly score maps in the SegmentMeIfYouCan submission "
                                   "layout (<frame>.hdf5 with a dataset 'value', higher = more anomalous) to search "
                                   "segments in and evaluate instead of the checkpoint's entropy; off when empty")
    score_threshold: float = setting(0.7, "with --scores_from: segments are the pixels whose score is >= this, in the "
                                          "maps' own units (any value; -threshold is the checkpoint's entropy "
                                          "threshold)")
    score_quantile: float = setting(0.0, "with --scores_from: segments are the pixels whose score is >= this quantile "
                                         "of the scores of all non-void pixels (for maps of unknown range); 0: the "
                                         "score >= --score_threshold", low=0.0, high=1.0)
    metric_families: str = setting("auto", "with --scores_from, the segment metrics: score_map (the score map alone), "
                                           "all (plus the MetaSeg metrics of the evaluated checkpoint's softmax, from "
                                           "its -prepare cache) or auto (all when that cache exists)",
                                   choices=("auto", "score_map", "all"))


@dataclass(frozen=True)
class Config:
    """The resolved settings of one run; groups an entry script does not use are None."""
    paths: Paths
    run: Run
    model: Model
    train: Training = None
    evalset: EvalSet = None
    meta: MetaStages = None
    stages: EvalStages = None
    oodmc: Oodmc = None
    scores: ScoresFrom = None

    def to_dict(self):
        return {name: dataclasses.asdict(group) for name, group in vars(self).items() if group is not None}


def _checked(base, name, low, high):
    def parse(text):
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes {base.__name__} values, got {text!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be finite, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            legal = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {legal}, got {text}")
        return value
    return parse


def _integer(text):
    """int that also takes integral float notation such as 5e5."""
    value = float(text)
    if value != int(value):
        raise ValueError(text)
    return int(value)


_integer.__name__ = "int"


def build_parser(description, groups, leave_out=()):
    """argparse parser with one flag per field of `groups` ({attribute name in Config: group class}), except the
    fields named in `leave_out`: a script takes exactly the settings it reads (tests/test_settings_read.py)."""
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for group_cls in groups.values():
        section = parser.add_argument_group(group_cls.__name__)
        for f in dataclasses.fields(group_cls):
            if f.name in leave_out:
                continue
            meta = f.metadata
            names = [*meta["flags"], f"--{f.name}"]
            if f.type is bool:
                section.add_argument(*names, dest=f.name, action="store_true", help=meta["help"])
                continue
            base = {int: _integer, float: float, str: str}[f.type]
            section.add_argument(*names, dest=f.name, default=f.default, choices=meta["choices"],
                                 type=_checked(base, f"--{f.name}", meta["low"], meta["high"]),
                                 metavar=None if meta["choices"] else f.type.__name__.upper(), help=meta["help"])
    return parser


def parse_config(groups, args):
    """Frozen Config from parsed `args` of `build_parser(..., groups)`; a field the parser left out keeps its default."""
    values = vars(args)
    cfg = Config(**{name: cls(**{f.name: values.get(f.name, f.default) for f in dataclasses.fields(cls)})
                    for name, cls in groups.items()})
    if cfg.scores and cfg.scores.scores_from and cfg.evalset.entropy_threshold != EvalSet.entropy_threshold:
        # one name per meaning: the entropy threshold would otherwise be read as a threshold of the maps' scores
        raise UserError(f"-threshold {cfg.evalset.entropy_threshold} is the entropy threshold of a checkpoint's "
                        "segments; for the --scores_from maps pass --score_threshold (or --score_quantile)")
    return cfg


def settings_markdown():
    """Markdown table of every setting: group, flag(s), default and help, in the order of the dataclasses.

    The settings table of docs/settings.md is this output (a test compares them), so it cannot drift from the code.
    """
    def text(help):
        # argparse needs % doubled in help; markdown would hide <...> as a tag and split the cell at |
        return help.replace("%%", "%").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")

    lines = ["| group | flag(s) | default | help |", "|---|---|---|---|"]
    for group in (Paths, Run, Model, Training, EvalSet, MetaStages, EvalStages, Oodmc, ScoresFrom):
        for f in dataclasses.fields(group):
            flags = ", ".join(f"`{name}`" for name in (*f.metadata["flags"], f"--{f.name}"))
            default = ('""' if f.default == "" else str(f.default)).replace("|", "\\|")
            lines.append(f"| {group.__name__} | {flags} | `{default}` | {text(f.metadata['help'])} |")
    return "\n".join(lines) + "\n"


def valset_name(cfg):
    """VALSET with its split, as used in output paths (Fishyscapes_Static, LostAndFound, ...)."""
    evalset = cfg.evalset or EvalSet()
    if evalset.VALSET == "Fishyscapes":
        return f"Fishyscapes_{evalset.fs_split}"
    if evalset.VALSET == "LostAndFound" and evalset.laf_split != "test":
        return f"LostAndFound_{evalset.laf_split}"
    return evalset.VALSET


def valset_split(cfg):
    """The split argument of src.dataset.build_valset: fs_split for Fishyscapes, laf_split for LostAndFound."""
    return cfg.evalset.laf_split if cfg.evalset.VALSET == "LostAndFound" else cfg.evalset.fs_split


def valset_root(cfg):
    """The folder of VALSET under data_root."""
    return {"LostAndFound": cfg.paths.lost_and_found, "Fishyscapes": cfg.paths.fishyscapes,
            "RoadAnomaly21": cfg.paths.road_anomaly21, "RoadObstacle21": cfg.paths.road_obstacle21}[cfg.evalset.VALSET]


def layout(cfg):
    """The output paths of these settings (src/layout.py); a group the script does not take keeps its defaults."""
    evalset, scores = cfg.evalset or EvalSet(), cfg.scores or ScoresFrom()
    return Layout(cfg.paths.io_root, valset_name(cfg), cfg.model.MODEL, cfg.model.optim_target, cfg.model.pareto_alpha,
                  cfg.model.init_ckpt, evalset.entropy_threshold, scores.scores_from, scores.score_threshold,
                  scores.score_quantile)


def layout_of(argv):
    """The output layout of the command line flags `argv` of any script (the flags that name no output are
    ignored): how the demo and the benchmarks find what a step they ran wrote."""
    return layout(parse_config(META_GROUPS, build_parser("", META_GROUPS).parse_known_args(argv)[0]))


def source_command(cfg, epoch, stage):
    """The command line that runs `stage` of meta_classification.py on the score source of this config: its
    --scores_from maps, else the cache of checkpoint `epoch`."""
    return meta_command(cfg, stage) if cfg.scores.scores_from else stage_command(cfg, epoch, stage)


def stage_command(cfg, epoch, stage):
    """The command line that runs `stage` (-prepare, -segment, ...) for checkpoint `epoch` of this config."""
    return meta_command(cfg, stage, val_epoch=epoch, scores_from="")


# the groups of meta_classification.py, whose command lines the scripts print as hints
META_GROUPS = {"paths": Paths, "run": Run, "model": Model, "evalset": EvalSet, "meta": MetaStages, "oodmc": Oodmc,
               "scores": ScoresFrom}


def meta_command(cfg, stage, **overrides):
    """`python meta_classification.py <stage>` with every setting of `cfg` that script takes and that differs from
    its default (`overrides`: field name -> value), made from the settings themselves so that it cannot drift from
    the parser; the stage switches (-prepare, ...) are left to `stage`."""
    parts = ["python meta_classification.py", stage]
    for name, cls in META_GROUPS.items():
        group = getattr(cfg, name)
        for f in dataclasses.fields(cls):
            if f.type is bool:
                continue
            value = overrides.get(f.name, f.default if group is None else getattr(group, f.name))
            if value != f.default:
                parts += [f"--{f.name}", shlex.quote(str(value))]
    return " ".join(parts)


if __name__ == "__main__":
    print(settings_markdown(), end="")
