import glob
import json
import os
import runpy
import shutil
import sys

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from PIL import Image
from pycocotools.coco import COCO as CocoApi

from preparation.make_cropped_coco import crop_object, make_cropped_coco
from preparation.prepare_cityscapes import prepare_cityscapes
from preparation.prepare_coco_segmentation import prepare_coco_segmentation
from preparation.prepare_lost_and_found import prepare_lost_and_found
from src.dataset.cs_coco_embedding import generate_cs_coco_embedding
from src.errors import UserError
from tests.conftest import CROPPED_COCO_MIN_AREA, CS_PER_COCO, EMBEDDING_HALF_WINDOW

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXCLUDED_COCO_IDS = {1, 2, 3, 4, 6, 8, 10, 13}  # person ... stop sign, as SPEC section 1 lists them


def _read(path):
    return np.asarray(Image.open(path))


def _files(root):
    return {path: os.stat(path).st_mtime_ns for path in glob.glob(os.path.join(root, "**", "*"), recursive=True)
            if os.path.isfile(path)}


def _coco_api(world):
    return CocoApi(str(world / "COCO" / "2017" / "annotations" / "instances_train2017.json"))


def test_cityscapes_train_ids_follow_the_cityscapesscripts_table(prepared_world):
    label_files = glob.glob(str(prepared_world / "cityscapes" / "gtFine" / "*" / "*" / "*_gtFine_labelIds.png"))
    assert len(label_files) == 6  # tiny world: 4 train + 2 val
    seen = set()
    for path in label_files:
        label_ids = _read(path)
        train_ids = _read(path.replace("_labelIds.png", "_labelTrainIds.png"))
        for label_id in np.unique(label_ids):
            train_id = id2label[int(label_id)].trainId
            expected = 255 if train_id in (-1, 255) else train_id
            assert (train_ids[label_ids == label_id] == expected).all(), (path, label_id)
        seen |= set(np.unique(train_ids).tolist())
    assert {0, 10, 13, 255} <= seen  # road, sky, car and void all occur, so the check above means something


def _label_image(root, relative, values):
    path = root / relative
    path.parent.mkdir(parents=True)
    Image.fromarray(np.array([values], dtype=np.uint8)).save(path)
    return str(path)


def test_every_cityscapes_label_id_maps_as_in_cityscapesscripts(tmp_path):
    path = _label_image(tmp_path, "cityscapes/gtFine/val/city/city_000000_000019_gtFine_labelIds.png", range(34))
    assert prepare_cityscapes(tmp_path / "cityscapes") == {"found": 1, "written": 1}
    expected = [255 if id2label[i].trainId in (-1, 255) else id2label[i].trainId for i in range(34)]
    assert _read(path.replace("_labelIds", "_labelTrainIds"))[0].tolist() == expected


LAF_SPEC = {0: 255, 1: 1, **{i: 2 for i in [*range(2, 31), 32, 35, 40, 41, 42, 43]},
            **{i: 0 for i in (31, 33, 34, 36, 37, 38, 39)}}


def test_every_lost_and_found_label_id_maps_as_in_the_spec_table(tmp_path):
    path = _label_image(tmp_path, "lost_and_found/gtCoarse/test/01_seq/01_seq_000000_000010_gtCoarse_labelIds.png",
                        range(44))
    assert prepare_lost_and_found(tmp_path / "lost_and_found") == {"found": 1, "written": 1}
    assert _read(path.replace("_labelIds", "_labelTrainIds"))[0].tolist() == [LAF_SPEC[i] for i in range(44)]


def test_lost_and_found_train_ids_follow_the_spec_table(prepared_world):
    spec = LAF_SPEC
    label_files = glob.glob(str(prepared_world / "lost_and_found" / "gtCoarse" / "*" / "*" / "*_labelIds.png"))
    assert len(label_files) == 5  # 3 test + 2 train
    seen = set()
    for path in label_files:
        label_ids = _read(path)
        train_ids = _read(path.replace("_labelIds.png", "_labelTrainIds.png"))
        for label_id in np.unique(label_ids):
            assert (train_ids[label_ids == label_id] == spec[int(label_id)]).all(), (path, label_id)
        seen |= set(np.unique(train_ids).tolist())
    assert {1, 2, 255} <= seen


def test_lost_and_found_preparation_rejects_ids_outside_the_table(tmp_path):
    _label_image(tmp_path, "lost_and_found/gtCoarse/test/01_seq/01_seq_000000_000010_gtCoarse_labelIds.png", [1, 44])
    with pytest.raises(UserError, match=r"01_seq_000000_000010_gtCoarse_labelIds.png.*\[44\]"):
        prepare_lost_and_found(tmp_path / "lost_and_found")


def test_coco_filter_keeps_exactly_the_images_it_must(prepared_world):
    with open(prepared_world / "COCO" / "2017" / "annotations" / "instances_train2017.json") as f:
        instances = json.load(f)
    excluded_images = {ann["image_id"] for ann in instances["annotations"] if ann["category_id"] in EXCLUDED_COCO_IDS}
    large = {image["id"] for image in instances["images"] if image["height"] >= 480 and image["width"] >= 480}
    expected = large - excluded_images
    # the tiny world drops images for each reason, a crowd of an excluded category among them
    crowd_excluded = {ann["image_id"] for ann in instances["annotations"]
                      if ann["category_id"] in EXCLUDED_COCO_IDS and ann["iscrowd"]}
    assert expected and large - expected and len(large) < len(instances["images"]) and crowd_excluded & large
    masks = glob.glob(str(prepared_world / "COCO" / "2017" / "annotations" / "ood_seg_train2017" / "*.png"))
    assert sorted(int(os.path.basename(path)[:-4]) for path in masks) == sorted(expected)


def test_coco_masks_are_254_on_the_union_of_all_instances(prepared_world):
    api = _coco_api(prepared_world)
    folder = prepared_world / "COCO" / "2017" / "annotations" / "ood_seg_train2017"
    for path in sorted(folder.glob("*.png")):
        image_id = int(path.stem)
        union = np.zeros((api.imgs[image_id]["height"], api.imgs[image_id]["width"]), bool)
        for ann in api.imgToAnns[image_id]:
            union |= api.annToMask(ann) > 0
        mask = _read(path)
        assert mask.dtype == np.uint8 and union.any() and not union.all()
        np.testing.assert_array_equal(mask, np.where(union, 254, 0))


def test_extra_excluded_categories_remove_masks_and_a_rerun_restores_them(prepared_world, tmp_path):
    shutil.copytree(prepared_world / "COCO", tmp_path / "COCO")
    root = tmp_path / "COCO" / "2017"
    folder = root / "annotations" / "ood_seg_train2017"
    before = sorted(path.name for path in folder.glob("*.png"))
    api = _coco_api(tmp_path)
    victim = int(before[0][:-4])
    category = api.imgToAnns[victim][0]["category_id"]
    removed = prepare_coco_segmentation(root, exclude_categories=[category])
    assert removed["removed"] >= 1 and removed["written"] == 0
    assert f"{victim:012d}.png" not in {path.name for path in folder.glob("*.png")}
    restored = prepare_coco_segmentation(root)
    assert restored["written"] == removed["removed"] and restored["removed"] == 0
    assert sorted(path.name for path in folder.glob("*.png")) == before
    with pytest.raises(UserError, match=r"\[999\]"):
        prepare_coco_segmentation(root, exclude_categories=[999])


def test_cropped_coco_objects_are_the_instances_on_black_cut_to_their_box(prepared_world):
    api = _coco_api(prepared_world)
    kept = [int(path.stem) for path in (prepared_world / "COCO" / "2017" / "annotations" / "ood_seg_train2017")
            .glob("*.png")]
    expected = {f"{image_id:012d}_{ann['id']}.png" for image_id in kept for ann in api.imgToAnns[image_id]
                if not ann["iscrowd"] and api.annToMask(ann).sum() >= CROPPED_COCO_MIN_AREA}
    crops = {path.name: path for path in (prepared_world / "cropped_coco").glob("*.png")}
    assert set(crops) == expected and expected
    for name, path in crops.items():
        image_id, ann_id = (int(part) for part in name[:-4].split("_"))
        mask = api.annToMask(api.anns[ann_id]) > 0
        rows, cols = np.nonzero(mask)
        box = np.s_[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        photo = _read(prepared_world / "COCO" / "2017" / "train2017" / f"{image_id:012d}.jpg")[box]
        crop = _read(path)
        assert crop.shape == photo.shape
        np.testing.assert_array_equal(crop.any(axis=2), mask[box])
        colours = photo[mask[box]].copy()
        colours[(colours == 0).all(axis=1)] = 1
        np.testing.assert_array_equal(crop[mask[box]], colours)


def test_crop_object_nudges_black_object_pixels_to_one():
    image = np.zeros((4, 5, 3), dtype=np.uint8)
    image[1, 2] = (200, 0, 9)  # object pixel with colour
    image[3, 4] = (50, 50, 50)  # outside the object
    mask = np.zeros((4, 5), bool)
    mask[1, 1:3] = True
    mask[2, 1] = True  # pure black object pixels at (1, 1) and (2, 1)
    crop = crop_object(image, mask)
    expected = np.array([[[1, 1, 1], [200, 0, 9]], [[1, 1, 1], [0, 0, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(crop, expected)


def test_second_runs_write_nothing(prepared_world):
    before = _files(prepared_world)
    assert prepare_cityscapes(prepared_world / "cityscapes")["written"] == 0
    assert prepare_lost_and_found(prepared_world / "lost_and_found")["written"] == 0
    assert prepare_coco_segmentation(prepared_world / "COCO" / "2017")["written"] == 0
    counts = make_cropped_coco(prepared_world / "COCO" / "2017", prepared_world / "cropped_coco",
                               min_area=CROPPED_COCO_MIN_AREA)
    assert counts["written"] == 0 and counts["objects"] > 0
    counts = generate_cs_coco_embedding(prepared_world / "cityscapes", prepared_world / "cropped_coco",
                                        prepared_world / "cs_coco_embedding", CS_PER_COCO, EMBEDDING_HALF_WINDOW, 0)
    assert counts["written"] == 0 and counts["existing"] == counts["objects"] * CS_PER_COCO
    assert _files(prepared_world) == before


@pytest.mark.parametrize("script, expected", [
    ("preparation/prepare_cityscapes.py", "wrote 0 *_gtFine_labelTrainIds.png (6 were already there)"),
    ("preparation/prepare_lost_and_found.py", "wrote 0 *_gtCoarse_labelTrainIds.png (5 were already there)"),
    ("preparation/prepare_coco_segmentation.py", "wrote 0 masks"),
    ("src/dataset/cs_coco_embedding.py", "wrote 0 samples"),
])
def test_scripts_report_what_they_found_and_that_a_rerun_writes_nothing(prepared_world, monkeypatch, capsys,
                                                                        script, expected):
    argv = [script, "--data_root", str(prepared_world)]
    if script.endswith("cs_coco_embedding.py"):
        argv += ["--cs_per_coco", str(CS_PER_COCO), "--half_window", str(EMBEDDING_HALF_WINDOW)]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(os.path.join(REPO, script), run_name="__main__")
    assert expected in capsys.readouterr().out


def test_cs_coco_embedding_refuses_other_settings_on_an_existing_folder(prepared_world):
    with pytest.raises(UserError, match="delete it"):
        generate_cs_coco_embedding(prepared_world / "cityscapes", prepared_world / "cropped_coco",
                                   prepared_world / "cs_coco_embedding", CS_PER_COCO, EMBEDDING_HALF_WINDOW, seed=1)


def test_cs_coco_embedding_made_when_the_half_window_was_called_crop_size_is_still_the_same(prepared_world, tmp_path):
    folder = tmp_path / "embedding"
    shutil.copytree(prepared_world / "cs_coco_embedding", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["settings"] = {"cs_per_coco": CS_PER_COCO, "crop_size": EMBEDDING_HALF_WINDOW, "seed": 0}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    counts = generate_cs_coco_embedding(prepared_world / "cityscapes", prepared_world / "cropped_coco", folder,
                                        CS_PER_COCO, EMBEDDING_HALF_WINDOW, 0)
    assert counts["written"] == 0 and counts["existing"] == counts["objects"] * CS_PER_COCO
    with pytest.raises(UserError, match="delete it"):
        generate_cs_coco_embedding(prepared_world / "cityscapes", prepared_world / "cropped_coco", folder,
                                   CS_PER_COCO, EMBEDDING_HALF_WINDOW + 1, 0)


def test_cs_coco_embedding_is_deterministic_for_a_seed(prepared_world, tmp_path):
    generate_cs_coco_embedding(prepared_world / "cityscapes", prepared_world / "cropped_coco", tmp_path / "again",
                               CS_PER_COCO, EMBEDDING_HALF_WINDOW, seed=0)
    ours = prepared_world / "cs_coco_embedding"
    assert (tmp_path / "again" / "manifest.json").read_text() == (ours / "manifest.json").read_text()
    for path in (ours / "target").glob("*.png"):
        np.testing.assert_array_equal(_read(tmp_path / "again" / "target" / path.name), _read(path))
    generate_cs_coco_embedding(prepared_world / "cityscapes", prepared_world / "cropped_coco", tmp_path / "other",
                               CS_PER_COCO, EMBEDDING_HALF_WINDOW, seed=1)
    assert (tmp_path / "other" / "manifest.json").read_text() != (ours / "manifest.json").read_text()


def test_missing_inputs_name_the_directory_the_pattern_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        prepare_cityscapes(tmp_path / "cityscapes")
    message = str(error.value)
    assert str(tmp_path / "cityscapes" / "gtFine") in message and "*_gtFine_labelIds.png" in message
    assert "download" in message
    with pytest.raises(FileNotFoundError, match="instances_train2017.json"):
        prepare_coco_segmentation(tmp_path / "COCO" / "2017")
