"""Figures of stage 3: ROC / PR curves and the per-image overlays (the paper's qualitative figure)."""
import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def save_overlay(image, label, entropy, mask_before, mask_after, path, title):
    """One image's panel: image, ground truth, entropy heatmap, OoD mask before and after meta classification.

    image: (H, W, 3) uint8; label: (H, W) uint8, 0 in-distribution, 1 OoD, 255 ignored; entropy: (H, W)
    float in [0, 1]; mask_before, mask_after: (H, W) bool.
    """
    gt = np.zeros((*label.shape, 3), dtype=np.uint8)
    gt[label == 0] = (60, 60, 60)
    gt[label == 1] = (255, 200, 0)
    panels = [("image", image), ("ground truth (OoD yellow, ignored black)", gt), ("normalised entropy", entropy),
              ("OoD segments", _tint(image, mask_before)), ("after meta classifier", _tint(image, mask_after))]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2 * label.shape[0] / label.shape[1] + 0.6))
    for ax, (name, panel) in zip(axes, panels):
        if panel.ndim == 2:
            ax.imshow(panel, cmap="inferno", vmin=0, vmax=1)
        else:
            ax.imshow(panel)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def _tint(image, mask):
    out = image.astype(np.float32)
    out[mask] = 0.4 * out[mask] + 0.6 * np.array([255, 0, 0], dtype=np.float32)
    return out.astype(np.uint8)


def _save(fig, path):
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
