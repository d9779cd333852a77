"""COCO objects pasted into Cityscapes (the seed's augmentation): the dataset and its generator.

Each cropped COCO object (its non-black pixels) is pasted, unscaled, into `cs_per_coco` random Cityscapes
train images, its centre of mass at a random centre that keeps a margin of a quarter of the image's
shorter side from every border (250 px on 1024 x 2048 in the published fork). Object pixels get
train id 254, all others keep theirs. The saved sample is the window of +-half_window around the centre,
clipped to the image, as image/<name>.png and target/<name>.png; manifest.json records the settings
and where every sample came from.

    python src/dataset/cs_coco_embedding.py --data_root ./datasets [--cs_per_coco 40 --half_window 480 --seed 0]
"""
import argparse
import os
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

if __name__ == "__main__":  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from src.checks import open_image, read_image  # noqa: E402
from src.dataset.cityscapes import Cityscapes  # noqa: E402
from src.dataset.listing import OOD_TRAIN_ID, LabelledImages, find_files, load_label, require_labels  # noqa: E402
from src.errors import UserError, run_script  # noqa: E402
from src.files import atomic_path, load_json, save_json  # noqa: E402



class CsCocoEmbedding(LabelledImages):
    train_id_out = OOD_TRAIN_ID
    ignore_index = 255
    label_values = (*range(19), OOD_TRAIN_ID, 255)  # Cityscapes train ids and the pasted objects
    num_classes = Cityscapes.num_classes

    def __init__(self, root, transform=None):
        """root: the cs_coco_embedding folder (<data_root>/cs_coco_embedding)."""
        self.root = root
        self.transform = transform
        data_root = os.path.dirname(os.path.normpath(root))
        self.images = find_files(os.path.join(root, "image"), "*.png", "CsCocoEmbedding",
                                 f"run `python src/dataset/cs_coco_embedding.py --data_root {data_root}`")
        self.targets = [os.path.join(root, "target", os.path.basename(path)) for path in self.images]
        require_labels(self.images, self.targets, "CsCocoEmbedding", "target/<name>.png beside image/<name>.png",
                       f"delete {root} and run `python src/dataset/cs_coco_embedding.py --data_root {data_root}`")


def paste_object(image, target, obj, centre):
    """Paste the non-black pixels of `obj` with their centre of mass at `centre`, clipped to the image.

    image: (H, W, 3) uint8; target: (H, W) uint8 train ids; obj: (h, w, 3) uint8 object on pure black;
    centre: (row, col). Returns new (image, target): object colours, and 254 on the pasted pixels.
    """
    rows, cols = np.nonzero(obj.any(axis=2))
    if rows.size == 0:
        raise ValueError("the object has no non-black pixel")
    rows_to = rows - int(round(rows.mean())) + centre[0]
    cols_to = cols - int(round(cols.mean())) + centre[1]
    inside = (rows_to >= 0) & (rows_to < image.shape[0]) & (cols_to >= 0) & (cols_to < image.shape[1])
    image, target = image.copy(), target.copy()
    image[rows_to[inside], cols_to[inside]] = obj[rows[inside], cols[inside]]
    target[rows_to[inside], cols_to[inside]] = OOD_TRAIN_ID
    return image, target


def centre_window(height, width, centre, half_window):
    """(top, left, bottom, right) of the +-half_window window around `centre`, clipped to the image."""
    row, col = centre
    return (max(row - half_window, 0), max(col - half_window, 0), min(row + half_window, height),
            min(col + half_window, width))


def random_centre(rng, height, width):
    """(row, col) drawn uniformly with a margin of a quarter of the shorter side from every border."""
    margin = min(height, width) // 4
    return tuple(int(v) for v in rng.integers((margin, margin), (height - margin, width - margin)))


def generate_cs_coco_embedding(cs_root, cropped_coco_root, out_root, cs_per_coco=40, half_window=480, seed=0):
    """Write the samples of every cropped COCO object (see the module docstring) and manifest.json.

    Deterministic for `seed`: each object draws from its own generator (seed, crc32 of its file name),
    so its samples do not depend on the other objects. Existing samples are kept, so a second run
    writes nothing. Returns counts: cityscapes, objects, written, existing.
    """
    settings = {"cs_per_coco": cs_per_coco, "half_window": half_window, "seed": seed}
    manifest_path = os.path.join(out_root, "manifest.json")
    old_manifest = None
    if os.path.isfile(manifest_path):
        old_manifest = load_json(manifest_path, f"delete {out_root} to make it anew")
        # the half window was called crop_size before, a name the training crop (-crop) has too
        old_manifest["settings"] = {"half_window" if key == "crop_size" else key: value
                                    for key, value in old_manifest["settings"].items()}
        if old_manifest["settings"] != settings:
            raise UserError(f"{out_root} was made with {old_manifest['settings']}, not {settings}; "
                             "delete it to make it anew, or pass the same settings")
    cityscapes = Cityscapes(cs_root, "train")
    data_root = os.path.dirname(os.path.normpath(cropped_coco_root))
    objects = find_files(cropped_coco_root, "*.png", "cropped COCO",
                         f"run `python preparation/make_cropped_coco.py --data_root {data_root}`")
    per_object = min(cs_per_coco, len(cityscapes))
    samples, written, existing = [], 0, 0
    for object_path in tqdm(objects, desc="cs_coco_embedding"):
        object_name = os.path.basename(object_path)[:-len(".png")]
        rng = np.random.default_rng([seed, zlib.crc32(object_name.encode())])
        obj = None
        for k, cs_index in enumerate(rng.choice(len(cityscapes), size=per_object, replace=False)):
            width, height = open_image(cityscapes.images[cs_index]).size
            centre = random_centre(rng, height, width)
            top, left, bottom, right = centre_window(height, width, centre, half_window)
            name = f"{object_name}_{k}.png"
            samples.append({"name": name, "object": os.path.basename(object_path),
                            "cityscapes_image": os.path.relpath(cityscapes.images[cs_index], cs_root),
                            "centre": list(centre), "window": [top, left, bottom, right]})
            image_path = os.path.join(out_root, "image", name)
            target_path = os.path.join(out_root, "target", name)
            if os.path.isfile(image_path) and os.path.isfile(target_path):
                existing += 1
                continue
            if obj is None:
                obj = np.asarray(read_image(object_path))
            image, target = paste_object(np.asarray(read_image(cityscapes.images[cs_index])),
                                         np.asarray(load_label(cityscapes.targets[cs_index])), obj, centre)
            with atomic_path(target_path) as tmp:
                Image.fromarray(target[top:bottom, left:right]).save(tmp)
            with atomic_path(image_path) as tmp:
                Image.fromarray(image[top:bottom, left:right]).save(tmp)
            written += 1
    manifest = {"settings": settings, "samples": samples}
    if manifest != old_manifest:
        save_json(manifest, manifest_path)
    return {"cityscapes": len(cityscapes), "objects": len(objects), "written": written, "existing": existing}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", default="./datasets", help="holds cityscapes/ and cropped_coco/")
    parser.add_argument("--cs_per_coco", type=int, default=40, help="Cityscapes images each object is pasted into")
    parser.add_argument("--half_window", type=int, default=480, help="half side of the saved window around each object")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.cs_per_coco < 1 or args.half_window < 1:
        parser.error("--cs_per_coco and --half_window must be >= 1")
    out_root = os.path.join(args.data_root, "cs_coco_embedding")
    counts = generate_cs_coco_embedding(os.path.join(args.data_root, "cityscapes"),
                                        os.path.join(args.data_root, "cropped_coco"), out_root,
                                        args.cs_per_coco, args.half_window, args.seed)
    print(f"found {counts['objects']} cropped COCO objects and {counts['cityscapes']} Cityscapes train images; "
          f"{out_root}: wrote {counts['written']} samples, {counts['existing']} were already there")


if __name__ == "__main__":
    run_script(main)
