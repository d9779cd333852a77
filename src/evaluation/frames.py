"""Which frames of an evaluation set stage 3 scores, and whether they can be measured at all: checked and said
before any work."""
import numpy as np

from src.errors import UserError
from src.external_maps import frame_train_ids


def scored_frames(dataset, name):
    """The frames the metrics score and leave out, for the report: {num_scored, num_unlabelled (frames of the
    set not scored), left_out: {frame: why}}; prints them. UserError when no frame is scored, since then there is
    nothing to measure. name: the set's name in outputs."""
    unlabelled = sum(not dataset.has_label(i) for i in range(len(dataset)))
    if unlabelled == len(dataset):
        raise UserError(f"none of the {len(dataset)} frames of {name} has labels, so there is "
                        "nothing to measure; --export_smiyc writes the submission files without them")
    scored = len(dataset) - unlabelled
    line = f"{name}: the metrics score {scored} frames"
    by_reason = {}
    for frame, reason in sorted(dataset.left_out.items()):
        by_reason.setdefault(reason, []).append(frame)
    if by_reason:
        line += "; left out: " + "; ".join(
            f"{len(frames)} ({reason}: {', '.join(frames[:5])}{' ...' if len(frames) > 5 else ''})"
            for reason, frames in by_reason.items())
    print(line)
    return {"num_scored": scored, "num_unlabelled": unlabelled, "left_out": dict(sorted(dataset.left_out.items()))}


def check_pixel_classes(dataset, name, root):
    """-pixel needs in-distribution and OoD pixels among the labels (AUROC, AP and FPR95 compare the two): checked on
    the label files before any metric is computed, else UserError naming the set (`name`, in folder `root`)."""
    counts = np.zeros(2, dtype=np.int64)
    for i in range(len(dataset)):
        gt_train = frame_train_ids(dataset, i)
        if gt_train is not None:
            counts += [(gt_train == dataset.train_id_in).sum(), (gt_train == dataset.train_id_out).sum()]
    if not counts.all():
        raise UserError(f"-pixel: the labels of {name} in {root} hold {counts[1]} OoD and {counts[0]} "
                        "in-distribution pixels, and pixel metrics compare the two; evaluate a set with both (or "
                        "check its labels), or leave out -pixel")


def named_frames(dataset, names, name):
    """Indices of the frames the comma-separated `names` (--visualize_frames) name (None when it is empty),
    checked before any work."""
    if not names:
        return None
    index = {dataset.frame_name(i): i for i in range(len(dataset))}
    names = [frame.strip() for frame in names.split(",") if frame.strip()]
    unknown = [frame for frame in names if frame not in index]
    if unknown:
        raise UserError(f"no frame named {', '.join(unknown)} in {name}, --visualize_frames; "
                        f"name frames such as {', '.join(list(index)[:3])}")
    return [index[frame] for frame in names]
