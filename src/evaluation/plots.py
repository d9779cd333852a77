"""Figures of stage 3: ROC / PR curves and the per-frame overlays (the paper's Figure 7), and which frames to show."""
import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from src.cache import read_cache  # noqa: E402
from src.checks import read_image  # noqa: E402
from src.evaluation.measure import binary_labels  # noqa: E402
from src.files import atomic_path  # noqa: E402


def save_curves(curves, path_roc, path_pr, title):
    """curves: {name: PixelMetrics.compute() result}; writes the ROC and the PR curve of each as PNGs."""
    for path, kind in ((path_roc, "roc"), (path_pr, "pr")):
        fig, ax = plt.subplots(figsize=(5, 4.5))
        for name, result in curves.items():
            if kind == "roc":
                ax.plot(result["roc"]["fpr"], result["roc"]["tpr"], label=f"{name} (AUROC {result['auroc']:.3f})")
            else:
                ax.plot(result["pr"]["recall"], result["pr"]["precision"], label=f"{name} (AP {result['ap']:.3f})")
        ax.set_xlabel("false positive rate" if kind == "roc" else "recall")
        ax.set_ylabel("true positive rate" if kind == "roc" else "precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8, loc="lower right" if kind == "roc" else "upper right")
        ax.grid(alpha=0.3)
        _save(fig, path)


# Segment outcomes and their colours: saturated hues that no street object has, the same in every panel.
OUTCOMES = (("true segment, kept", (0, 255, 255)), ("true segment, removed", (255, 0, 255)),
            ("false positive, kept", (255, 255, 0)), ("false positive, removed", (120, 255, 0)))


def frames_to_show(sizes, iou0, removed, count):
    """The `count` frames whose overlays show the most, most telling first.

    sizes, iou0, removed: one array per frame with one entry per predicted OoD segment: pixels (int),
    1 for a false positive (bool or int), removed by the meta classifier (bool).
    The frames are taken in turn by three criteria: the largest true segment, the most removed false
    positives, the most removed true segments (ties: more removed pixels, then the earlier frame); a
    criterion that has no frame left with a positive value passes its turn on. When no criterion has
    one, the frames with the most segment pixels follow, then the rest in order.
    Returns a list of frame indices (at most `count`, no repeats).
    """
    criteria = [[], [], []]
    for i, (size, false, gone) in enumerate(zip(sizes, iou0, removed)):
        size, false, gone = np.asarray(size, np.int64), np.asarray(false, bool), np.asarray(gone, bool)
        criteria[0].append((size[~false].max(initial=0), 0))
        criteria[1].append((int((false & gone).sum()), int(size[false & gone].sum())))
        criteria[2].append((int((~false & gone).sum()), int(size[~false & gone].sum())))
    total = [int(np.sum(size)) for size in sizes]
    chosen, turn = [], 0
    while len(chosen) < min(count, len(sizes)):
        for step in range(len(criteria)):
            values = criteria[(turn + step) % len(criteria)]
            left = [i for i in range(len(sizes)) if i not in chosen and values[i][0] > 0]
            if left:
                chosen.append(min(left, key=lambda i: (-values[i][0], -values[i][1], i)))
                break
        else:
            rest = sorted((i for i in range(len(sizes)) if i not in chosen), key=lambda i: (-total[i], i))
            chosen += rest[:count - len(chosen)]
        turn += 1
    return chosen


def save_overlays(source, results, removed, frames, count, threshold, out_dir, title):
    """Figure-7 overlays (`save_overlay`) of `frames` of a checkpoint's score source (src/score_source.py), or,
    when None, of the `count` frames that show the most (`frames_to_show`), as <out_dir>/<index>_<frame>.png.
    results, removed: the segments and the removed ones per frame; title: with {} for the frame's name."""
    if frames is None:
        frames = frames_to_show([r["metrics"]["S"] for r in results], [r["metrics"]["iou0"] for r in results],
                                removed, count)
    dataset = source.dataset
    for i in frames:
        cache = read_cache(source.paths[i], ("entropy", "gt_train"))
        save_overlay(np.asarray(read_image(dataset.images[i])),
                     binary_labels(cache["gt_train"], dataset.train_id_in, dataset.train_id_out),
                     cache["entropy"], results[i]["components"], np.asarray(results[i]["metrics"]["iou0"], bool),
                     removed[i], threshold, os.path.join(out_dir, f"{i:05d}_{dataset.frame_name(i)}.png"),
                     title.format(dataset.frame_name(i)))


def save_overlay(image, label, entropy, segments, false_positive, removed, threshold, path, title):
    """One frame as the paper's Figure 7: the image with the ground-truth OoD outlined, the entropy with a
    colour bar, the OoD segments before the meta classifier (true or false) and after it (kept or removed).

    image: (H, W, 3) uint8; label: (H, W) uint8, 0 in-distribution, 1 OoD, 255 ignored; entropy: (H, W)
    float in [0, 1]; segments: (H, W) int, segment k (1..n) where +-k, 0 elsewhere (segment search);
    false_positive, removed: (n,) bool per segment; threshold: the segment search's entropy threshold.
    """
    # each panel is about 500 px wide: drawing a 1024 x 2048 frame at full size only cost memory (1.5 GB
    # more per process, mostly matplotlib's contours) for pixels the saved figure cannot show
    step = -(-label.shape[1] // 1000)
    image, label, entropy, segments = (np.asarray(a)[::step, ::step] for a in (image, label, entropy, segments))
    ids = np.abs(segments)
    false_positive, removed = np.asarray(false_positive, bool), np.asarray(removed, bool)
    outcome = np.zeros(len(removed) + 1, dtype=np.int64)  # per segment id: index into OUTCOMES, + 1
    outcome[1:] = 1 + 2 * false_positive + removed
    before = np.zeros(len(removed) + 1, dtype=np.int64)
    before[1:] = 1 + 2 * false_positive
    height, width = label.shape
    panel = 5.0  # inches: 500 px wide at the saved dpi, whatever the image size
    fig, axes = plt.subplots(2, 2, figsize=(2 * panel + 1.2, 2 * panel * height / width + 1.6),
                             gridspec_kw=dict(wspace=0.04, hspace=0.12))
    (ax_image, ax_entropy), (ax_before, ax_after) = axes
    ignored = label == 255
    shaded = image.copy()
    shaded[ignored] = shaded[ignored] // 3
    ax_image.imshow(shaded)
    ax_image.set_title("image, ground-truth OoD outlined, ignored pixels dark", fontsize=10)
    shown = ax_entropy.imshow(entropy, cmap="inferno", vmin=0, vmax=1)
    ax_entropy.set_title("normalised entropy", fontsize=10)
    # an inset bar keeps the entropy panel as large as the others
    bar = fig.colorbar(shown, cax=ax_entropy.inset_axes([1.02, 0, 0.03, 1]))
    bar.ax.axhline(threshold, color="white", linewidth=2)
    bar.set_ticks(sorted({0, 0.5, 1, threshold}))
    bar.ax.tick_params(labelsize=8)
    bar.set_label(f"segments: entropy >= {threshold:g}", fontsize=8)
    n_true, n_false = int((~false_positive).sum()), int(false_positive.sum())
    ax_before.imshow(_paint(image, before[ids]))
    ax_before.set_title(f"OoD segments: {n_true} true, {n_false} false positive", fontsize=10)
    ax_after.imshow(_paint(image, outcome[ids]))
    ax_after.set_title(f"after the meta classifier: removed {int((removed & false_positive).sum())} of {n_false} "
                       f"false, {int((removed & ~false_positive).sum())} of {n_true} true", fontsize=10)
    for ax, painted in ((ax_before, before[ids]), (ax_after, outcome[ids])):
        for k, (_, colour) in enumerate(OUTCOMES, start=1):
            if (painted == k).any():  # an outline in the colour keeps segments of a few pixels visible
                ax.contour(painted == k, levels=[0.5], colors=[np.array(colour) / 255], linewidths=1.5)
    for ax in (ax_image, ax_before, ax_after):
        if (label == 1).any():
            ax.contour(label == 1, levels=[0.5], colors="white", linewidths=1.2)
    for ax in axes.ravel():
        ax.axis("off")
    handles = [Patch(color=np.array(colour) / 255, label=name) for name, colour in OUTCOMES]
    handles.append(Line2D([], [], color="white", linewidth=1.2, label="ground-truth OoD (outline)"))
    legend = fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=9, frameon=True, facecolor="0.35",
                        labelcolor="white", edgecolor="none")
    legend.get_frame().set_alpha(1)
    fig.suptitle(title, fontsize=11)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _paint(image, outcome):
    """image (H, W, 3) uint8 with the pixels of outcome k (1..4, 0: none) in the colour of OUTCOMES[k - 1]."""
    palette = np.array([(0, 0, 0)] + [colour for _, colour in OUTCOMES], dtype=np.float32)
    out = image.astype(np.float32)
    painted = outcome > 0
    out[painted] = 0.25 * out[painted] + 0.75 * palette[outcome[painted]]
    return out.astype(np.uint8)


def _save(fig, path):
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
