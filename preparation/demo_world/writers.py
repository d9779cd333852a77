"""One writer per dataset, in the real download's file layout; make_demo_world runs them all."""
import json
import os
import zlib

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage
from tqdm import tqdm

from preparation.demo_world.coco import COCO_EXCLUDED, COCO_OBJECTS, coco_role, coco_segmentation, render_coco
from preparation.demo_world.objects import HAZARDS, ID, NON_HAZARDS, VOID_IDS
from preparation.demo_world.scene import pick_obstacles, render_street
from preparation.demo_world.street import ANOMALY_FRAMES, FORCED, OBSTACLE_CONDITIONS
from src.errors import UserError
from src.files import atomic_path, save_json

# street: (H, W) of the Cityscapes, LostAndFound and Fishyscapes scenes; anomaly, obstacle: (H, W) of the
# RoadAnomaly21 and RoadObstacle21 frames; cityscapes: (train, val) images; lost_and_found: (test, train);
# fishyscapes: images per split; smiyc: (frames, labelled frames) of RoadAnomaly21, obstacle_track: of
# RoadObstacle21 (demo: 30 labelled frames named as the real validation split's, of which the benchmark's
# exclusions leave 20); coco: images;
# coco_object: (min, max) object size in px (COCO images stay >= 480 px, or < 480 px where meant to).
# full has the real image sizes (RoadAnomaly21 1280x720 .jpg, RoadObstacle21 1920x1080 .webp) and a few
# frames per set: it shows what the real run costs (bench/rehearsal.py).
SIZES = {
    "tiny": dict(street=(32, 64), anomaly=(32, 64), obstacle=(32, 64), cityscapes=(4, 2), lost_and_found=(3, 2),
                 fishyscapes=2, smiyc=(3, 2), obstacle_track=(3, 2), coco=6, coco_object=(12, 24)),
    "demo": dict(street=(256, 512), anomaly=(256, 512), obstacle=(256, 512), cityscapes=(120, 20),
                 lost_and_found=(40, 10), fishyscapes=10, smiyc=(10, 7), obstacle_track=(36, 30), coco=60,
                 coco_object=(24, 96)),
    "full": dict(street=(1024, 2048), anomaly=(720, 1280), obstacle=(1080, 1920), cityscapes=(4, 2),
                 lost_and_found=(4, 2), fishyscapes=2, smiyc=(3, 2), obstacle_track=(3, 2), coco=8,
                 coco_object=(40, 240)),
}
MARKER = "demo_world.json"
# Raised whenever the same size and seed draw other bytes (2: 256 x 512 demo scenes, dim-to-bright Cityscapes-like
# exposure; 3: Cityscapes-like roads with as many patches, puddles and crossings as LostAndFound-like ones), so
# that a world and the weights trained on it from an earlier version are not mixed with this one.
WORLD_VERSION = 3
DATASET_DIRS = ("cityscapes", "COCO", "lost_and_found", "fishyscapes", "dataset_AnomalyTrack",
                "dataset_ObstacleTrack")
JPEG_QUALITY = 90
WEBP_QUALITY = 90
CITIES = {"train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf"),
          "val": ("frankfurt", "lindau", "munster")}
LAF_SEQUENCES = {"test": ("02_Hanns_Klemm_Str_44", "04_Maurener_Weg_8", "05_Schafgasse_1",
                          "07_Festplatz_Flugfeld", "15_Rechbergstr_Deckenpfronn"),
                 "train": ("01_Hanns_Klemm_Str_45", "03_Hanns_Klemm_Str_19", "06_Galvanistr",
                           "10_Schlossberg_9", "12_Umberto_Nobile_Str")}
LAF_OUT_OF_ROI, LAF_FREE = 0, 1


def sample_rng(seed, stream, index):
    """The random generator of sample `index` of dataset `stream`: independent of every other sample."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), index])


def save(path, array):
    """Write an image or label array atomically; the format follows the suffix (fixed quality)."""
    options = {".png": dict(compress_level=6), ".jpg": dict(quality=JPEG_QUALITY),
               ".webp": dict(quality=WEBP_QUALITY, method=4)}[os.path.splitext(path)[1]]
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, **options)


def write_missing(files, render):
    """Write the arrays render() returns to `files`, unless every file exists; returns files written."""
    missing = [not os.path.exists(path) for path in files]
    if not any(missing):
        return 0
    for path, array, write in zip(files, render(), missing):
        if write:
            save(path, array)
    return sum(missing)


def write_cityscapes(root, sizes, seed, bar):
    h, w = sizes["street"]
    summary = {}
    for split, count in zip(("train", "val"), sizes["cityscapes"]):
        cities, written = CITIES[split], 0
        for i in range(count):
            city = cities[i % len(cities)]
            stem = f"{city}_{i // len(cities):06d}_000019"
            files = [os.path.join(root, "cityscapes", "leftImg8bit", split, city, f"{stem}_leftImg8bit.png"),
                     os.path.join(root, "cityscapes", "gtFine", split, city, f"{stem}_gtFine_labelIds.png")]
            force = [FORCED[(3 * i + k) % len(FORCED)] for k in range(3)]
            stream = f"cityscapes/{split}"
            written += write_missing(files, lambda: render_street(sample_rng(seed, stream, i), h, w, "cityscapes",
                                                                  force=force)[:2])
            bar.update()
        summary[f"cityscapes/{split}"] = dict(images=count, labels=count, written=written)
    return summary


def write_lost_and_found(root, sizes, seed, bar):
    h, w = sizes["street"]
    summary = {}
    for split, count in zip(("test", "train"), sizes["lost_and_found"]):
        sequences, written = LAF_SEQUENCES[split], 0
        for i in range(count):
            sequence, k = sequences[i % len(sequences)], i // len(sequences)
            stem = f"{sequence}_{k // 4:06d}_{30 * (k % 4 + 1):06d}"
            files = [os.path.join(root, "lost_and_found", "leftImg8bit", split, sequence, f"{stem}_leftImg8bit.png"),
                     os.path.join(root, "lost_and_found", "gtCoarse", split, sequence, f"{stem}_gtCoarse_labelIds.png")]
            written += write_missing(files, lambda: laf_sample(sample_rng(seed, f"lost_and_found/{split}", i), h, w))
            bar.update()
        summary[f"lost_and_found/{split}"] = dict(images=count, labels=count, written=written)
    return summary


def laf_sample(rng, h, w):
    """A LostAndFound-like frame: image and gtCoarse labelIds (0 outside the road, 1 free road, objects)."""
    obstacles = pick_obstacles(rng, rng.integers(1, 4))
    if rng.random() < 0.3:
        obstacles += pick_obstacles(rng, 1, NON_HAZARDS)
    image, label_ids, ood = render_street(rng, h, w, "lost_and_found", obstacles=obstacles)
    gt = np.where(ood > 0, ood, np.where(label_ids == ID["road"], LAF_FREE, LAF_OUT_OF_ROI))
    return image, gt.astype(np.uint8)


def write_fishyscapes(root, sizes, seed, bar):
    h, w = sizes["street"]
    count, summary = sizes["fishyscapes"], {}
    for split, make in (("Static", fishyscapes_static), ("LostAndFound", fishyscapes_laf)):
        written = 0
        for i in range(count):
            stem = os.path.join(root, "fishyscapes", split, f"{i:04d}")
            written += write_missing([stem + ".jpg", stem + ".png"],
                                     lambda: make(sample_rng(seed, f"fishyscapes/{split}", i), h, w))
            bar.update()
        summary[f"fishyscapes/{split}"] = dict(images=count, labels=count, written=written)
    return summary


def fishyscapes_static(rng, h, w):
    """Fishyscapes Static-like: objects anywhere in a Cityscapes scene; 0 in, 1 OoD, 255 Cityscapes void."""
    obstacles = pick_obstacles(rng, rng.integers(1, 3))
    image, label_ids, ood = render_street(rng, h, w, "cityscapes", obstacles=obstacles, where="anywhere",
                                          scale=rng.uniform(2.0, 3.5))
    void = np.isin(label_ids, list(VOID_IDS))
    return image, np.where(ood > 0, 1, np.where(void, 255, 0)).astype(np.uint8)


def fishyscapes_laf(rng, h, w):
    """Fishyscapes LostAndFound-like: obstacles on the road; 0 road, 1 OoD, 255 outside the road."""
    obstacles = pick_obstacles(rng, rng.integers(1, 4))
    image, label_ids, ood = render_street(rng, h, w, "lost_and_found", obstacles=obstacles)
    return image, np.where(ood > 0, 1, np.where(label_ids == ID["road"], 0, 255)).astype(np.uint8)


def write_road_anomaly(root, sizes, seed, bar):
    """RoadAnomaly21-like: big anomalies anywhere; labelled frames `validation<k>`, others unlabelled."""
    h, w = sizes["anomaly"]
    count, labelled = sizes["smiyc"]
    folder = os.path.join(root, "dataset_AnomalyTrack")
    written = 0
    for i in range(count):
        if i < labelled:
            name, kind = f"validation{i:04d}", None
        else:
            kind = ANOMALY_FRAMES[(i - labelled) % len(ANOMALY_FRAMES)]
            name = f"{kind}{i - labelled:04d}"
        files = [os.path.join(folder, "images", f"{name}.jpg")]
        if i < labelled:
            files.append(os.path.join(folder, "labels_masks", f"{name}_labels_semantic.png"))
        written += write_missing(files, lambda: road_anomaly(sample_rng(seed, "dataset_AnomalyTrack", i), h, w, kind))
        bar.update()
    return {"dataset_AnomalyTrack": dict(images=count, labels=labelled, written=written)}


def road_anomaly(rng, h, w, kind=None):
    """Image and label (0 usual, 1 anomaly, 255 void: a one-pixel seam around each anomaly)."""
    first = (kind, int(rng.choice(HAZARDS[kind]))) if kind else pick_obstacles(rng, 1)[0]
    obstacles = [first] + pick_obstacles(rng, rng.integers(0, 2))
    image, _, ood = render_street(rng, h, w, "anomaly", obstacles=obstacles, where="anywhere",
                                  scale=rng.uniform(2.0, 3.5))
    anomaly = ood > 0
    grown = ndimage.binary_dilation(anomaly, structure=np.ones((3, 3), bool))
    label = np.where(anomaly, 1, np.where(grown, 255, 0)).astype(np.uint8)
    return image, label


def write_road_obstacle(root, sizes, seed, bar):
    """RoadObstacle21-like .webp frames: labelled `validation_<k>`, others named by their condition."""
    h, w = sizes["obstacle"]
    count, labelled = sizes["obstacle_track"]
    folder = os.path.join(root, "dataset_ObstacleTrack")
    written = 0
    for i in range(count):
        condition = OBSTACLE_CONDITIONS[i % len(OBSTACLE_CONDITIONS)]
        if i < labelled:
            name = f"validation_{i + 1}"
        else:
            kind = sorted(HAZARDS)[(i - labelled) % len(HAZARDS)]
            name = f"{condition}_{kind}_{i - labelled + 1}"
        files = [os.path.join(folder, "images", f"{name}.webp")]
        if i < labelled:
            files.append(os.path.join(folder, "labels_masks", f"{name}_labels_semantic.png"))
        written += write_missing(files, lambda: road_obstacle(sample_rng(seed, "dataset_ObstacleTrack", i), h, w,
                                                              condition))
        bar.update()
    return {"dataset_ObstacleTrack": dict(images=count, labels=labelled, written=written)}


def road_obstacle(rng, h, w, condition):
    """Image and label (0 road, 1 obstacle, 255 everything off the road).

    As in the real track, the obstacles are small and on the road: 1-3 of them, of LostAndFound sizes, at
    depths 0.3-0.8: off the bottom edge, and never so far that they shrink to a few pixels;
    a frame is drawn again (from the same generator) until its obstacles cover 0.2% of it.
    """
    for _ in range(10):  # a labelled frame shows an obstacle (a drawn one can hide behind the hood or a car)
        image, label_ids, ood = render_street(rng, h, w, "obstacle", obstacles=pick_obstacles(rng, rng.integers(1, 4)),
                                              condition=condition, depth=(0.3, 0.8))
        label = np.where(ood > 0, 1, np.where(label_ids == ID["road"], 0, 255)).astype(np.uint8)
        if (label == 1).sum() >= 0.002 * h * w:
            break
    return image, label


def write_coco(root, sizes, seed, bar):
    """train2017/<id:012d>.jpg and annotations/instances_train2017.json."""
    folder = os.path.join(root, "COCO", "2017")
    json_path = os.path.join(folder, "annotations", "instances_train2017.json")
    paths = [os.path.join(folder, "train2017", f"{coco_image_id(i):012d}.jpg") for i in range(sizes["coco"])]
    images, annotations, used, written = [], [], set(), 0
    skip = os.path.exists(json_path) and all(os.path.exists(path) for path in paths)
    for i, path in enumerate(paths):
        bar.update()
        if skip:
            continue
        rng = sample_rng(seed, "COCO/train2017", i)
        image, instances, objects = render_coco(rng, coco_role(i), sizes["coco_object"])
        if not os.path.exists(path):
            save(path, image)
            written += 1
        h, w = instances.shape
        images.append(dict(id=coco_image_id(i), file_name=os.path.basename(path), height=h, width=w, license=1))
        for k, obj in enumerate(objects):
            mask = instances == k + 1
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append(dict(id=len(annotations) + 1, image_id=coco_image_id(i), category_id=obj["category_id"],
                                    segmentation=coco_segmentation(mask, obj["polygons"], obj["iscrowd"]),
                                    area=float(mask_utils.area(rle)), bbox=mask_utils.toBbox(rle).tolist(),
                                    iscrowd=obj["iscrowd"]))
            used.add(obj["category_id"])
    if not skip and not os.path.exists(json_path):
        names = {**{k: v[:2] for k, v in COCO_OBJECTS.items()}, **COCO_EXCLUDED}
        save_json(dict(info=dict(description="meta-ood demo world: synthetic COCO-like objects", version="1.0",
                                 year=2017, contributor="preparation/make_demo_world.py", date_created="2017/09/01"),
                       licenses=[dict(id=1, name="synthetic, generated by meta-ood", url="")],
                       images=images, annotations=annotations,
                       categories=[dict(id=k, name=names[k][0], supercategory=names[k][1]) for k in sorted(used)]),
                  json_path)
        written += 1
    with open(json_path) as f:
        count = len(json.load(f)["annotations"])
    return {"COCO/train2017": dict(images=len(paths), labels=count, written=written)}


def coco_image_id(i):
    return 1000 + 7 * i


def claim(data_root, size, seed):
    """Check that data_root is empty of other data or holds this very world; record size and seed."""
    marker = os.path.join(data_root, MARKER)
    record = dict(generator="preparation/make_demo_world.py", version=WORLD_VERSION, size=size, seed=seed)
    if os.path.exists(marker):
        with open(marker) as f:
            found = json.load(f)
        if found.get("version", 1) != WORLD_VERSION:
            raise UserError(f"{data_root} holds a demo world of an earlier version of the generator (version "
                            f"{found.get('version', 1)}, now {WORLD_VERSION}); delete it and the outputs made from it "
                            f"(for make demo: rm -rf demo) or choose another --data_root")
        if (found.get("size"), found.get("seed")) != (size, seed):
            raise UserError(f"{data_root} holds a demo world made with --size {found.get('size')} --seed "
                             f"{found.get('seed')}; delete it or choose another --data_root for --size {size} "
                             f"--seed {seed}")
        return
    present = [name for name in DATASET_DIRS if os.path.exists(os.path.join(data_root, name))]
    if present:
        raise UserError(f"{data_root} already holds {', '.join(present)} that make_demo_world did not write (no "
                         f"{MARKER}); choose an empty --data_root so that real and synthetic data never mix")
    save_json(record, marker)


def make_demo_world(data_root, size="demo", seed=0, progress=False):
    """Write the demo world under data_root; files already there are kept (see the module docstring).

    Returns {dataset: {"images": n, "labels": label files (COCO: annotations), "written": files
    written by this call}} for cityscapes/train, cityscapes/val, COCO/train2017, lost_and_found/test,
    lost_and_found/train, fishyscapes/Static, fishyscapes/LostAndFound, dataset_AnomalyTrack and
    dataset_ObstacleTrack.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    sizes = SIZES[size]
    claim(data_root, size, seed)
    total = (sum(sizes["cityscapes"]) + sizes["coco"] + sum(sizes["lost_and_found"]) + 2 * sizes["fishyscapes"]
             + sizes["smiyc"][0] + sizes["obstacle_track"][0])
    summary = {}
    with tqdm(total=total, unit="image", disable=not progress, desc="demo world") as bar:
        for name, write in (("cityscapes", write_cityscapes), ("COCO", write_coco),
                            ("lost_and_found", write_lost_and_found), ("fishyscapes", write_fishyscapes),
                            ("dataset_AnomalyTrack", write_road_anomaly),
                            ("dataset_ObstacleTrack", write_road_obstacle)):
            bar.set_description(name)
            summary.update(write(data_root, sizes, seed, bar))
    return summary
