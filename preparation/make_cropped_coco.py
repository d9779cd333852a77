"""cropped_coco/ from COCO itself: every instance (crowd regions excepted) of the images that
prepare_coco_segmentation.py keeps, as the RGB object on pure black, cropped to its bounding box, saved as
<image id:012d>_<annotation id>.png. Object pixels that are pure black in the photo become (1, 1, 1), so the
object keeps its shape when pasted (non-black pixels are the object).

    python preparation/make_cropped_coco.py --data_root ./datasets [--min_area 1000 --exclude_categories 15]
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config import Paths  # noqa: E402
from src.checks import read_image  # noqa: E402
from src.dataset.coco import load_instances, select_ood_images  # noqa: E402
from src.errors import run_script  # noqa: E402
from src.files import atomic_path  # noqa: E402


def crop_object(image, mask):
    """image: (H, W, 3) uint8, mask: (H, W) bool -> (h, w, 3) uint8 object on black, cropped to the mask's
    bounding box; its black pixels nudged to (1, 1, 1)."""
    rows, cols = np.nonzero(mask)
    box = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    obj = np.where(mask[box][..., None], image[box], 0).astype(np.uint8)
    obj[mask[box] & ~obj.any(axis=2)] = 1
    return obj


def make_cropped_coco(coco_root, out_root, min_area=1000, exclude_categories=()):
    """Write the missing object crops to `out_root`; instances under `min_area` mask pixels are skipped.

    Crops already there are kept without looking at them again. Returns counts: images (filtered ones
    on disk), objects (crops there now), written, small (skipped instances).
    """
    coco_api = load_instances(coco_root)
    image_ids = [i for i in select_ood_images(coco_api, exclude_categories)
                 if os.path.isfile(os.path.join(coco_root, "train2017", f"{i:012d}.jpg"))]
    objects = written = small = 0
    for image_id in tqdm(image_ids, desc="cropped COCO"):
        image = None
        for ann in coco_api.imgToAnns[image_id]:
            if ann.get("iscrowd", 0):
                continue
            out = os.path.join(out_root, f"{image_id:012d}_{ann['id']}.png")
            if os.path.isfile(out):
                objects += 1
                continue
            mask = coco_api.annToMask(ann) > 0
            if mask.sum() < min_area:
                small += 1
                continue
            objects += 1
            if image is None:
                image = np.asarray(read_image(os.path.join(coco_root, "train2017", f"{image_id:012d}.jpg")))
            with atomic_path(out) as tmp:
                Image.fromarray(crop_object(image, mask)).save(tmp)
            written += 1
    return {"images": len(image_ids), "objects": objects, "written": written, "small": small}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", default="./datasets", help="holds COCO/2017/; writes cropped_coco/")
    parser.add_argument("--min_area", type=int, default=1000, help="skip instances with fewer mask pixels")
    parser.add_argument("--exclude_categories", type=int, nargs="*", default=[],
                        help="COCO category ids excluded on top of the eight Cityscapes-like ones")
    args = parser.parse_args()
    paths = Paths(data_root=args.data_root)
    counts = make_cropped_coco(paths.coco, paths.cropped_coco, args.min_area, args.exclude_categories)
    print(f"{paths.coco}: {counts['images']} images pass the filter, holding {counts['objects']} instances of "
          f">= {args.min_area} px ({counts['small']} smaller skipped); wrote {counts['written']} crops to "
          f"{paths.cropped_coco} ({counts['objects'] - counts['written']} were already there)")


if __name__ == "__main__":
    run_script(main)
