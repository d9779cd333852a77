"""Segment search of one image and its per-image results file.

The OoD mask is the normalised entropy >= threshold (computed as the original does, with
scipy.stats.entropy); the compiled metrics then find the predicted OoD segments and the ground-truth
OoD components and describe each. One compressed .npz per image holds the result, with the layout of
the golden files: `pred/<key>`, `gt/<key>`, `components`, `gt_components`.
"""
import os

import numpy as np
from scipy.stats import entropy

from src import layout
from src.errors import UserError
from src.files import atomic_path, load_json, load_npz
from src.metaseg.metrics import compute_metrics_components, compute_metrics_mask


def entropy_mask(probs, entropy_threshold):
    """OoD mask (H, W) uint8, 1 where the normalised entropy of probs (C, H, W) float32 >= threshold."""
    probs = np.asarray(probs, dtype=np.float32)  # scipy would compute the entropy of float16 probs in float16
    normalized_entropy = entropy(probs, axis=0) / np.log(probs.shape[0])
    return (normalized_entropy >= entropy_threshold).astype(np.uint8)


def segment_search(probs, gt_train, gt_label, entropy_threshold, ood_index, entropy=None):
    """Predicted OoD segments and ground-truth OoD components of one image, with their metrics.

    probs: (C, H, W) softmax, float32, or float16 (as the cache holds it: the metrics read it as is and give
    those of its float32 copy); gt_train: (H, W) train ids, 255 void; gt_label: (H, W) label ids; ood_index:
    train id of ground-truth OoD (2 for LostAndFound);
    entropy: optional (H, W) normalised entropy of the float32 softmax (the inference cache holds it), so
    that the OoD mask does not depend on the rounding of float16 probs.
    Returns a dict: metrics, gt_metrics (metric name -> list, one value per segment, see
    src.metaseg.metrics) and components, gt_components ((H, W) int32, +id interior, -id boundary).
    """
    if entropy is None:
        mask = entropy_mask(probs, entropy_threshold)
    else:
        mask = (entropy >= entropy_threshold).astype(np.uint8)
    metrics, components = compute_metrics_components(probs, gt_train, mask, ood_index)
    gt_metrics, gt_components = compute_metrics_mask(probs, mask, gt_train, gt_label, ood_index)
    return {"metrics": metrics, "components": components, "gt_metrics": gt_metrics, "gt_components": gt_components}


def save_segments(path, result):
    """Write a segment_search result to `path` as one compressed .npz, atomically."""
    arrays = {f"pred/{key}": np.asarray(values) for key, values in result["metrics"].items()}
    arrays.update({f"gt/{key}": np.asarray(values) for key, values in result["gt_metrics"].items()})
    # components, gt_components and any further per-image array (the score-map search adds score_min)
    arrays.update({key: value for key, value in result.items() if key not in ("metrics", "gt_metrics")})
    # a file object, so that numpy does not append .npz to the temporary name
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_segments(path):
    """Read a file written by save_segments: the same dict segment_search returned."""
    data = load_npz(path, "delete it and search again with meta_classification.py -segment (the same flags)")
    result = {"metrics": {}, "gt_metrics": {}}
    for name, values in data.items():
        side, _, key = name.partition("/")
        if side == "pred":
            result["metrics"][key] = values.tolist()
        elif side == "gt":
            result["gt_metrics"][key] = values.tolist()
        else:
            result[name] = values
    if "components" not in result or "gt_components" not in result:
        raise ValueError(f"{path} holds no segment maps: it was not written by save_segments")
    return result


def segments_path(out_dir, index):
    return os.path.join(out_dir, f"{index:05d}.npz")


def searched_checkpoint(out_dir):
    """The checkpoint whose cache the segment results in `out_dir` come from (segments.json), or None."""
    path = layout.segments_record(out_dir)
    if not os.path.isfile(path):
        return None
    return load_json(path, "delete the folder and search again with meta_classification.py -segment").get("checkpoint")


def load_all_segments(out_dir, num_images, make_command):
    """The segment results of images 0..num_images-1 in `out_dir` (the caller checks what they were searched
    in); UserError naming `make_command` when one is missing."""
    paths = [segments_path(out_dir, i) for i in range(num_images)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise UserError(f"{len(missing)} of {num_images} segment results are missing in {out_dir} (first: "
                        f"{os.path.basename(missing[0])}); make them with: {make_command}")
    return [load_segments(p) for p in paths]
