"""COCO OoD masks: annotations/ood_seg_train2017/<id:012d>.png for every train2017 image without any
instance (crowd included) of a Cityscapes-like category (person, bicycle, car, motorcycle, bus, truck,
traffic light, stop sign; plus --exclude_categories) whose sides are both >= 480 px. The mask is the union
of all its instance masks (pycocotools annToMask) as 254, 0 elsewhere.

    python preparation/prepare_coco_segmentation.py --data_root ./datasets [--exclude_categories 15 16]
"""
import argparse
import glob
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config import Paths  # noqa: E402
from src.dataset.coco import COCO, load_instances, select_ood_images  # noqa: E402
from src.errors import run_script  # noqa: E402
from src.files import atomic_path  # noqa: E402


def ood_mask(coco_api, image_id):
    """(H, W) uint8: 254 on the union of the image's instance masks, 0 elsewhere."""
    info = coco_api.imgs[image_id]
    mask = np.zeros((info["height"], info["width"]), dtype=np.uint8)
    for ann in coco_api.imgToAnns[image_id]:
        mask[coco_api.annToMask(ann) > 0] = COCO.train_id_out
    return mask


def prepare_coco_segmentation(root, exclude_categories=()):
    """Write the missing masks under <root>/annotations/ood_seg_train2017/ and remove those of images the
    filter no longer keeps (an earlier run with other settings), so the folder always matches the filter.

    Images listed in the annotations but absent from train2017/ are skipped. Returns counts:
    annotated, kept, missing (kept but not on disk), written, removed.
    """
    coco_api = load_instances(root)
    selected = select_ood_images(coco_api, exclude_categories)
    kept = [i for i in selected if os.path.isfile(os.path.join(root, "train2017", f"{i:012d}.jpg"))]
    out_dir = os.path.join(root, "annotations", "ood_seg_train2017")
    wanted = {os.path.join(out_dir, f"{i:012d}.png") for i in kept}
    stale = sorted(set(glob.glob(os.path.join(out_dir, "*.png"))) - wanted)
    for path in stale:
        os.remove(path)
    written = 0
    for image_id in tqdm(kept, desc="COCO OoD masks"):
        out = os.path.join(out_dir, f"{image_id:012d}.png")
        if os.path.isfile(out):
            continue
        with atomic_path(out) as tmp:
            Image.fromarray(ood_mask(coco_api, image_id)).save(tmp)
        written += 1
    return {"annotated": len(coco_api.imgs), "kept": len(kept), "missing": len(selected) - len(kept),
            "written": written, "removed": len(stale)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", default="./datasets", help="holds COCO/2017/")
    parser.add_argument("--exclude_categories", type=int, nargs="*", default=[],
                        help="COCO category ids excluded on top of the eight Cityscapes-like ones")
    args = parser.parse_args()
    root = Paths(data_root=args.data_root).coco
    counts = prepare_coco_segmentation(root, args.exclude_categories)
    print(f"{root}: {counts['annotated']} annotated train2017 images, {counts['kept']} pass the filter "
          f"({counts['missing']} more are not in train2017/); wrote {counts['written']} masks to "
          f"annotations/ood_seg_train2017/ ({counts['kept'] - counts['written']} were already there), "
          f"removed {counts['removed']} that the filter no longer keeps")


if __name__ == "__main__":
    run_script(main)
