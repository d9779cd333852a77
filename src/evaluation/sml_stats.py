"""The class-wise max-logit statistics SML standardises with: measured once on Cityscapes train per
checkpoint (evaluation.py --sml_stats) and saved beside it, with the checkpoint's identity."""
import os

from src.cache import checkpoint_identity
from src.evaluation.scores import ClassStats
from src.files import load_json, save_json
from src.model import infer_dataset


def sml_stats_path(checkpoint):
    return os.path.splitext(checkpoint)[0] + "_sml.json"


def measure_sml_stats(model, checkpoint, dataset, device, amp, num_workers, num_classes):
    """Class-wise mean and std of the max logit of `model` (loaded from `checkpoint`) on `dataset`, saved beside
    the checkpoint."""
    stats = ClassStats(num_classes)
    for _, logits, _ in infer_dataset(model, dataset, device, amp, num_workers=num_workers):
        max_logit, pred = logits.max(0)
        stats.update(max_logit.cpu().numpy(), pred.cpu().numpy())
    save_json({**stats.to_dict(), "checkpoint": checkpoint_identity(checkpoint)}, sml_stats_path(checkpoint))
    print(f"--sml_stats: max-logit statistics of {len(dataset)} Cityscapes train images -> {sml_stats_path(checkpoint)}")


def load_sml_stats(checkpoint):
    """The SML statistics measured for `checkpoint`, or None when there are none (or they are stale)."""
    path = sml_stats_path(checkpoint)
    if not os.path.isfile(path):
        return None
    stats = load_json(path, "delete it and measure again with `python evaluation.py --sml_stats` (the same flags)")
    if stats.pop("checkpoint", None) != checkpoint_identity(checkpoint):
        return None
    return ClassStats.from_dict(stats)
