"""The demo world: real on-disk layouts, legal label values, a COCO file pycocotools reads back onto
the drawn objects, determinism per seed, idempotent re-runs and refusals to mix with other data."""
import filecmp
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cityscapes_labels
from PIL import Image
from pycocotools.coco import COCO
from scipy import ndimage
from torchvision.models._meta import _COCO_CATEGORIES

from preparation.demo_world.writers import write_road_anomaly, write_road_obstacle
from preparation.make_demo_world import SIZES, coco_role, make_demo_world, render_coco, sample_rng
from src.errors import UserError

TINY = SIZES["tiny"]
# LostAndFound labelIds per SPEC section 1
LAF_HAZARDS = set(range(2, 31)) | {32, 35} | set(range(40, 44))
LAF_NON_HAZARDS = {31, 33, 34, 36, 37, 38, 39}
EXCLUDED = {1, 2, 3, 4, 6, 8, 10, 13}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("world"))
    summary = make_demo_world(root, size="tiny", seed=0)
    return root, summary


def files_under(root):
    return sorted(os.path.relpath(path, root) for path in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                  if os.path.isfile(path))


def read(path):
    return np.asarray(Image.open(path))


def test_cityscapes_layout_and_labels(world):
    root, summary = world
    ids = set()
    official = {label.id for label in cityscapes_labels if label.id >= 0}
    to_train = {label.id: label.trainId for label in cityscapes_labels if label.id >= 0}
    for split, count in zip(("train", "val"), TINY["cityscapes"]):
        images = glob.glob(os.path.join(root, "cityscapes", "leftImg8bit", split, "*", "*_leftImg8bit.png"))
        labels = glob.glob(os.path.join(root, "cityscapes", "gtFine", split, "*", "*_gtFine_labelIds.png"))
        assert len(images) == len(labels) == count == summary[f"cityscapes/{split}"]["images"]
        for path in images:
            city = os.path.basename(os.path.dirname(path))
            match = re.fullmatch(r"([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png", os.path.basename(path))
            assert match and match.group(1) == city
            stem = os.path.basename(path)[:-len("_leftImg8bit.png")]
            label = read(os.path.join(root, "cityscapes", "gtFine", split, city, f"{stem}_gtFine_labelIds.png"))
            image = Image.open(path)
            assert image.mode == "RGB" and image.size == (TINY["street"][1], TINY["street"][0])
            assert label.dtype == np.uint8 and label.shape == TINY["street"]
            assert set(np.unique(label)) <= official
            ids |= set(np.unique(label).tolist())
    assert {0, 1} <= ids, "void ids unlabeled and ego vehicle appear"
    train_ids = {to_train[i] for i in ids}
    assert set(range(19)) <= train_ids, f"missing train classes {set(range(19)) - train_ids}"
    assert len({os.path.basename(os.path.dirname(p)) for p in glob.glob(
        os.path.join(root, "cityscapes", "leftImg8bit", "train", "*", "*.png"))}) > 1, "several cities"


def test_lost_and_found_layout_and_labels(world):
    root, _ = world
    hazards_seen = set()
    for split, count in zip(("test", "train"), TINY["lost_and_found"]):
        images = sorted(glob.glob(os.path.join(root, "lost_and_found", "leftImg8bit", split, "*", "*_leftImg8bit.png")))
        assert len(images) == count
        for path in images:
            sequence = os.path.basename(os.path.dirname(path))
            match = re.fullmatch(r"(.+)_(\d{6})_(\d{6})_leftImg8bit\.png", os.path.basename(path))
            assert match and match.group(1) == sequence and re.fullmatch(r"\d\d_[A-Za-z_0-9]+", sequence)
            stem = os.path.basename(path)[:-len("_leftImg8bit.png")]
            label = read(os.path.join(root, "lost_and_found", "gtCoarse", split, sequence,
                                      f"{stem}_gtCoarse_labelIds.png"))
            values = set(np.unique(label).tolist())
            assert values <= {0, 1} | LAF_HAZARDS | LAF_NON_HAZARDS
            assert {0, 1} <= values, "region of interest (free road) and outside"
            hazards_seen |= values & LAF_HAZARDS
            # objects stand on the road: only slivers peeking out behind nearer traffic may not touch it
            objects, count = ndimage.label(label >= 2, structure=np.ones((3, 3)))
            road_nearby = ndimage.binary_dilation(label == 1, structure=np.ones((3, 3)))
            on_road = [k for k in range(1, count + 1) if (road_nearby & (objects == k)).any()]
            assert np.isin(objects, on_road).sum() >= 0.9 * (objects > 0).sum()
            assert read(path).shape == (*TINY["street"], 3)
    assert hazards_seen


def test_fishyscapes_layout_and_labels(world):
    root, _ = world
    for split in ("Static", "LostAndFound"):
        images = sorted(glob.glob(os.path.join(root, "fishyscapes", split, "*.jpg")))
        assert len(images) == TINY["fishyscapes"]
        ood = 0
        for path in images:
            label = read(path[:-4] + ".png")
            assert label.shape == read(path).shape[:2]
            assert set(np.unique(label).tolist()) <= {0, 1, 255} and 0 in label
            ood += int((label == 1).sum())
        assert ood > 0


@pytest.mark.parametrize("track, suffix", [("dataset_AnomalyTrack", ".jpg"), ("dataset_ObstacleTrack", ".webp")])
def test_smiyc_layout_labelled_and_unlabelled(world, track, suffix):
    root, summary = world
    images = sorted(glob.glob(os.path.join(root, track, "images", f"*{suffix}")))
    count, labelled = TINY["smiyc"]
    assert len(images) == count == summary[track]["images"]
    with_label = 0
    for path in images:
        frame = os.path.basename(path)[:-len(suffix)]
        label_path = os.path.join(root, track, "labels_masks", f"{frame}_labels_semantic.png")
        image = Image.open(path)
        assert image.format == ("WEBP" if suffix == ".webp" else "JPEG")
        if os.path.exists(label_path):
            with_label += 1
            label = read(label_path)
            assert label.shape == np.asarray(image.convert("RGB")).shape[:2]
            assert set(np.unique(label).tolist()) <= {0, 1, 255} and 1 in label
    assert with_label == labelled and count - with_label > 0, "some frames are unlabelled"
    assert len(glob.glob(os.path.join(root, track, "labels_masks", "*"))) == labelled


def test_nothing_derived_is_written(world):
    root, _ = world
    files = files_under(root)
    assert not [f for f in files if "labelTrainIds" in f or "ood_seg" in f]
    assert sorted(os.listdir(root)) == sorted(["cityscapes", "COCO", "lost_and_found", "fishyscapes",
                                               "dataset_AnomalyTrack", "dataset_ObstacleTrack", "demo_world.json"])


def test_coco_annotations_decode_onto_the_drawn_objects(world):
    root, summary = world
    coco = COCO(os.path.join(root, "COCO", "2017", "annotations", "instances_train2017.json"))
    for category in coco.loadCats(coco.getCatIds()):
        assert _COCO_CATEGORIES[category["id"]] == category["name"], "real COCO ids and names"
    image_ids = sorted(coco.getImgIds())
    assert len(image_ids) == TINY["coco"] == summary["COCO/train2017"]["images"]
    encodings = set()
    for i, image_id in enumerate(image_ids):
        info = coco.loadImgs(image_id)[0]
        assert info["file_name"] == f"{image_id:012d}.jpg"
        written = read(os.path.join(root, "COCO", "2017", "train2017", info["file_name"]))
        assert written.shape == (info["height"], info["width"], 3)
        # the generator's own drawing of this image: its pixels and which object each pixel belongs to
        drawn, instances, objects = render_coco(sample_rng(0, "COCO/train2017", i), coco_role(i), TINY["coco_object"])
        assert np.abs(written.astype(float) - drawn).mean() < 4, "the jpg is the drawn image"
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None))
        assert len(annotations) == len(objects) >= 3
        for k, annotation in enumerate(sorted(annotations, key=lambda a: a["id"])):
            mask = coco.annToMask(annotation).astype(bool)
            assert np.array_equal(mask, instances == k + 1)
            assert annotation["area"] == mask.sum()
            ys, xs = np.nonzero(mask)
            assert np.allclose(annotation["bbox"], [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1])
            segmentation = annotation["segmentation"]
            if isinstance(segmentation, list):
                encodings.add("polygon")
                assert not annotation["iscrowd"]
            elif isinstance(segmentation["counts"], list):
                encodings.add("uncompressed RLE")
                assert annotation["iscrowd"] == 1
            else:
                encodings.add("compressed RLE")
                assert not annotation["iscrowd"]
    assert encodings == {"polygon", "uncompressed RLE", "compressed RLE"}


def test_coco_exercises_the_filter(world):
    root, _ = world
    coco = COCO(os.path.join(root, "COCO", "2017", "annotations", "instances_train2017.json"))
    excluded, crowd_only, small, kept = [], [], [], []
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None))
        street = [a for a in annotations if a["category_id"] in EXCLUDED]
        if street and all(a["iscrowd"] for a in street):
            crowd_only.append(image_id)
        elif street:
            excluded.append(image_id)
        elif min(info["height"], info["width"]) < 480:
            small.append(image_id)
        else:
            kept.append(image_id)
            assert min(info["height"], info["width"]) >= 480
    assert excluded and len(crowd_only) == 1 and small and kept
    crowds_kept = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=kept, iscrowd=True)) if a["iscrowd"]]
    assert crowds_kept, "a kept image holds a crowd of a category that is not excluded"


def test_same_seed_same_bytes_other_seed_other_bytes(world, tmp_path):
    root, _ = world
    make_demo_world(str(tmp_path / "again"), size="tiny", seed=0)
    make_demo_world(str(tmp_path / "other"), size="tiny", seed=1)
    files = files_under(root)
    assert files == files_under(str(tmp_path / "again")) == files_under(str(tmp_path / "other"))
    data = [f for f in files if f != "demo_world.json"]
    same = filecmp.cmpfiles(root, str(tmp_path / "again"), data, shallow=False)
    assert same[0] == data
    differ = filecmp.cmpfiles(root, str(tmp_path / "other"), data, shallow=False)[1]
    images = [f for f in data if f.endswith((".jpg", ".webp", "_leftImg8bit.png"))]
    assert set(images) <= set(differ)


def test_rerun_writes_nothing_and_restores_a_missing_file(world, tmp_path):
    root = str(tmp_path / "copy")
    shutil.copytree(world[0], root)
    before = {f: os.stat(os.path.join(root, f)).st_mtime_ns for f in files_under(root)}
    summary = make_demo_world(root, size="tiny", seed=0)
    assert all(counts["written"] == 0 for counts in summary.values())
    assert {f: os.stat(os.path.join(root, f)).st_mtime_ns for f in files_under(root)} == before
    victim = sorted(glob.glob(os.path.join(root, "lost_and_found", "gtCoarse", "test", "*", "*.png")))[1]
    os.remove(victim)
    summary = make_demo_world(root, size="tiny", seed=0)
    assert summary["lost_and_found/test"]["written"] == 1
    assert sum(counts["written"] for counts in summary.values()) == 1
    assert filecmp.cmp(victim, os.path.join(world[0], os.path.relpath(victim, root)), shallow=False)


def test_refuses_other_data_and_other_worlds(world, tmp_path):
    os.makedirs(tmp_path / "real" / "cityscapes" / "leftImg8bit")
    with pytest.raises(UserError, match="did not write"):
        make_demo_world(str(tmp_path / "real"), size="tiny", seed=0)
    assert os.listdir(tmp_path / "real") == ["cityscapes"]
    with pytest.raises(UserError, match="--seed 0"):
        make_demo_world(world[0], size="tiny", seed=3)
    with pytest.raises(ValueError, match="tiny"):
        make_demo_world(str(tmp_path / "new"), size="huge")
    with open(os.path.join(world[0], "demo_world.json")) as f:
        assert json.load(f)["seed"] == 0


def test_refuses_a_world_of_an_earlier_generator_version(world, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(world[0], old)
    marker = old / "demo_world.json"
    record = json.loads(marker.read_text())
    del record["version"]  # as the markers written before versions were recorded
    marker.write_text(json.dumps(record))
    with pytest.raises(UserError, match="earlier version.*rm -rf demo"):
        make_demo_world(str(old), size="tiny", seed=0)


def test_command_line_reports_a_complete_world(world):
    result = subprocess.run([sys.executable, "preparation/make_demo_world.py", "--data_root", world[0],
                             "--size", "tiny", "--seed", "0"], capture_output=True, text=True, check=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert "nothing written" in result.stdout
    assert re.search(r"COCO/train2017\s+6 images", result.stdout)


def test_smiyc_frames_take_their_own_sizes(tmp_path):
    """--size full gives RoadAnomaly21 and RoadObstacle21 frames other sizes than the street scenes:
    each writer draws at its track's size, labels the same size as their frame."""
    sizes = dict(TINY, anomaly=(24, 40), obstacle=(36, 64))
    bar = type("Bar", (), {"update": lambda self: None})()
    write_road_anomaly(str(tmp_path), sizes, 0, bar)
    write_road_obstacle(str(tmp_path), sizes, 0, bar)
    for track, (h, w), suffix in (("dataset_AnomalyTrack", (24, 40), ".jpg"), ("dataset_ObstacleTrack", (36, 64), ".webp")):
        images = sorted(glob.glob(os.path.join(tmp_path, track, "images", "*")))
        labels = sorted(glob.glob(os.path.join(tmp_path, track, "labels_masks", "*.png")))
        assert len(images) == TINY["smiyc"][0] and len(labels) == TINY["smiyc"][1]
        assert {os.path.splitext(path)[1] for path in images} == {suffix}
        assert {Image.open(path).size for path in images + labels} == {(w, h)}
