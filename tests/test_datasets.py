import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from src.dataset import (COCO, VALSETS, Cityscapes, CityscapesCocoMix, CsCocoEmbedding, Fishyscapes, LostAndFound,
                         RoadAnomaly21, RoadObstacle21)
from src.dataset import transforms as T
from src.dataset.cs_coco_embedding import paste_object
from src.errors import UserError


def _pair(height, width):
    """An RGB image whose pixel (r, c) encodes r and c, and a target holding the column index."""
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([rows + 1, cols + 1, np.full_like(rows, 7)], axis=2).astype(np.uint8)
    return Image.fromarray(image), Image.fromarray(cols.astype(np.uint8))


# ---- joint transforms


def test_random_crop_of_an_exact_fit_returns_the_input():
    image, target = _pair(6, 6)
    out_image, out_target = T.RandomCrop(6)(image, target)
    np.testing.assert_array_equal(np.asarray(out_image), np.asarray(image))
    np.testing.assert_array_equal(np.asarray(out_target), np.asarray(target))


def test_random_crop_pads_a_small_image_with_0_and_its_target_with_255():
    image, target = _pair(3, 5)
    out_image, out_target = T.RandomCrop(7)(image, target)
    out_image, out_target = np.asarray(out_image), np.asarray(out_target)
    assert out_image.shape == (7, 7, 3) and out_target.shape == (7, 7)
    np.testing.assert_array_equal(out_image[:3, :5], np.asarray(image))
    np.testing.assert_array_equal(out_target[:3, :5], np.asarray(target))
    assert (out_image[3:] == 0).all() and (out_image[:, 5:] == 0).all()
    assert (out_target[3:] == 255).all() and (out_target[:, 5:] == 255).all()


def test_random_crop_cuts_image_and_target_at_the_same_place():
    image, target = _pair(20, 30)
    torch.manual_seed(0)
    seen_offsets = set()
    for _ in range(20):
        out_image, out_target = T.RandomCrop(8)(image, target)
        out_image, out_target = np.asarray(out_image).astype(int), np.asarray(out_target)
        top, left = out_image[0, 0, 0] - 1, out_image[0, 0, 1] - 1
        np.testing.assert_array_equal(out_image, np.asarray(image)[top:top + 8, left:left + 8])
        np.testing.assert_array_equal(out_target, np.arange(left, left + 8)[None].repeat(8, axis=0))
        seen_offsets.add((top, left))
    assert len(seen_offsets) > 1


def test_random_crop_and_flip_follow_torch_manual_seed():
    image, target = _pair(20, 30)
    transform = T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(8)])
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append([np.asarray(transform(image, target)[0]) for _ in range(5)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_horizontal_flip_flips_image_and_target_together():
    image, target = _pair(4, 6)
    out_image, out_target = T.RandomHorizontalFlip(p=1.0)(image, target)
    np.testing.assert_array_equal(np.asarray(out_image), np.asarray(image)[:, ::-1])
    np.testing.assert_array_equal(np.asarray(out_target), np.asarray(target)[:, ::-1])
    out_image, _ = T.RandomHorizontalFlip(p=0.0)(image, target)
    np.testing.assert_array_equal(np.asarray(out_image), np.asarray(image))


def test_to_tensor_and_normalize_give_imagenet_standardised_float_and_int64_target():
    image = Image.fromarray(np.full((2, 3, 3), 255, dtype=np.uint8))
    target = Image.fromarray(np.array([[0, 18, 254], [255, 1, 2]], dtype=np.uint8))
    out_image, out_target = T.Compose([T.ToTensor(), T.Normalize()])(image, target)
    assert out_image.dtype == torch.float32 and out_image.shape == (3, 2, 3)
    expected = [(1 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    torch.testing.assert_close(out_image[:, 0, 0], torch.tensor(expected))
    assert out_target.dtype == torch.int64
    assert out_target.tolist() == [[0, 18, 254], [255, 1, 2]]


def test_resize_keeps_target_values_by_nearest_neighbour():
    labels = np.array([[0, 7], [254, 255]], dtype=np.uint8).repeat(5, axis=0).repeat(5, axis=1)
    image = Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8))
    out_image, out_target = T.Resize((7, 13))(image, Image.fromarray(labels))
    assert out_image.size == (13, 7) and out_target.size == (13, 7)
    assert set(np.unique(np.asarray(out_target))) == {0, 7, 254, 255}


# ---- cs_coco_embedding pasting, by hand


def test_paste_object_puts_the_centre_of_mass_at_the_centre_and_clips():
    image = np.zeros((6, 8, 3), dtype=np.uint8)
    target = np.full((6, 8), 3, dtype=np.uint8)
    obj = np.zeros((3, 3, 3), dtype=np.uint8)
    obj[1, :] = (10, 20, 30)  # a horizontal bar, centre of mass (1, 1)
    obj[0, 1] = (1, 1, 1)  # the nudged black object pixel still counts
    out_image, out_target = paste_object(image, target, obj, (0, 7))
    expected = np.full((6, 8), 3, dtype=np.uint8)
    expected[0, 6:8] = 254  # (1, 0) and (1, 1) land at (0, 6) and (0, 7); (1, 2) and (0, 1) fall outside
    np.testing.assert_array_equal(out_target, expected)
    assert out_image[0, 6].tolist() == [10, 20, 30] and out_image[0, 7].tolist() == [10, 20, 30]
    assert (out_image[expected != 254] == 0).all()
    assert (target == 3).all() and (image == 0).all()  # inputs untouched


# ---- loaders on the tiny demo world

TENSORS = T.Compose([T.ToTensor()])


def _check_pair(image, target, height, width, legal):
    assert image.dtype == torch.float32 and image.shape == (3, height, width)
    assert 0 <= image.min() and image.max() <= 1 and image.std() > 0
    assert target.dtype == torch.int64 and target.shape == (height, width)
    assert set(np.unique(target.numpy()).tolist()) <= set(legal)


def _png(path):
    return np.asarray(Image.open(path))


def _gt_fine(image_path, kind):
    """The gtFine file of a Cityscapes image path: kind labelIds or labelTrainIds."""
    return str(image_path).replace("leftImg8bit", "gtFine")[:-len("gtFine.png")] + f"gtFine_{kind}.png"


@pytest.mark.parametrize("split, count", [("train", 4), ("val", 2)])
def test_cityscapes_gives_images_and_train_ids(prepared_world, split, count):
    dataset = Cityscapes(prepared_world / "cityscapes", split, TENSORS)
    assert len(dataset) == count
    for i in range(len(dataset)):
        image, target = dataset[i]
        _check_pair(image, target, 32, 64, [*range(19), 255])
        label_ids = _png(_gt_fine(dataset.images[i], "labelIds"))
        assert (target[torch.from_numpy(label_ids == 7)] == 0).all()  # labelId 7 is road, train id 0
    assert dataset.frame_name(0).count("_") == 2 and not dataset.frame_name(0).endswith("leftImg8bit")
    pil_image, pil_target = Cityscapes(prepared_world / "cityscapes", split)[0]
    assert isinstance(pil_image, Image.Image) and pil_target.mode == "L"


@pytest.mark.parametrize("background, legal", [("road", {0, 254}), ("ignore", {254, 255})])
def test_coco_gives_254_objects_on_the_chosen_background(prepared_world, background, legal):
    dataset = COCO(prepared_world / "COCO" / "2017", "train", TENSORS, background=background)
    assert len(dataset) == 2
    for i in range(len(dataset)):
        image, target = dataset[i]
        mask = _png(dataset.targets[i])
        _check_pair(image, target, *mask.shape, legal)
        assert set(np.unique(target.numpy()).tolist()) == legal
        np.testing.assert_array_equal(target.numpy() == 254, mask == 254)


def test_coco_rejects_an_unknown_background(prepared_world):
    with pytest.raises(ValueError, match="road"):
        COCO(prepared_world / "COCO" / "2017", background="void")


def test_cityscapes_coco_mix_has_all_cityscapes_plus_a_seeded_coco_share(prepared_world):
    roots = prepared_world / "cityscapes", prepared_world / "COCO" / "2017"
    crop = T.Compose([T.RandomCrop(24), T.ToTensor()])
    mix = CityscapesCocoMix(*roots, "train", crop, subsampling_factor=0.5, seed=0)
    assert len(mix) == 4 + 2 and mix.num_cityscapes == 4
    for i in range(len(mix)):
        image, target = mix[i]
        _check_pair(image, target, 24, 24, [*range(19), 254, 255])
    assert mix.images[4:] == sorted(COCO(roots[1]).images)

    subsets = {tuple(CityscapesCocoMix(*roots, subsampling_factor=0.25, seed=seed).images[4:]) for seed in range(10)}
    assert len(subsets) == 2 and all(len(subset) == 1 for subset in subsets)  # each of the 2 COCO images drawn
    again = [CityscapesCocoMix(*roots, subsampling_factor=0.25, seed=3).images for _ in range(2)]
    assert again[0] == again[1]
    assert len(CityscapesCocoMix(*roots, subsampling_factor=0.1)) == 4  # round(0.4) COCO images
    with pytest.raises(UserError, match="only 2 prepared"):
        CityscapesCocoMix(*roots, subsampling_factor=1.0)


def test_cs_coco_embedding_holds_254_exactly_where_object_pixels_were_pasted(prepared_world):
    root = prepared_world / "cs_coco_embedding"
    with open(root / "manifest.json") as f:
        manifest = json.load(f)
    dataset = CsCocoEmbedding(root, TENSORS)
    assert len(dataset) == len(manifest["samples"]) == 2 * len(list((prepared_world / "cropped_coco").glob("*.png")))
    by_name = {os.path.basename(path): i for i, path in enumerate(dataset.images)}
    for sample in manifest["samples"]:
        cs_image_path = prepared_world / "cityscapes" / sample["cityscapes_image"]
        cs_image = _png(cs_image_path)
        cs_target = _png(_gt_fine(cs_image_path, "labelTrainIds"))
        obj = _png(prepared_world / "cropped_coco" / sample["object"])
        # reference: move every object pixel by hand, its centre of mass onto the centre
        expected_image, expected_target = cs_image.copy(), cs_target.copy()
        pixels = [(r, c) for r in range(obj.shape[0]) for c in range(obj.shape[1]) if obj[r, c].any()]
        com_r = round(sum(r for r, _ in pixels) / len(pixels))
        com_c = round(sum(c for _, c in pixels) / len(pixels))
        for r, c in pixels:
            r_to, c_to = r - com_r + sample["centre"][0], c - com_c + sample["centre"][1]
            if 0 <= r_to < cs_image.shape[0] and 0 <= c_to < cs_image.shape[1]:
                expected_image[r_to, c_to] = obj[r, c]
                expected_target[r_to, c_to] = 254
        top, left, bottom, right = sample["window"]
        cy, cx = sample["centre"]
        assert (top, left) == (max(cy - 16, 0), max(cx - 16, 0))
        assert (bottom, right) == (min(cy + 16, cs_image.shape[0]), min(cx + 16, cs_image.shape[1]))
        h, w = cs_image.shape[:2]
        assert h // 4 <= cy < h - h // 4 and h // 4 <= cx < w - h // 4  # margin: a quarter of the shorter side
        image, target = dataset[by_name[sample["name"]]]
        np.testing.assert_array_equal(target.numpy(), expected_target[top:bottom, left:right])
        np.testing.assert_array_equal(_png(root / "image" / sample["name"]), expected_image[top:bottom, left:right])
        assert (target == 254).any() and (target != 254).any()
        _check_pair(image, target, bottom - top, right - left, [*range(19), 254, 255])


def test_lost_and_found_gives_train_ids_and_the_official_label_ids(prepared_world):
    dataset = LostAndFound(prepared_world / "lost_and_found", "test", TENSORS)
    assert len(dataset) == 3 and (dataset.train_id_in, dataset.train_id_out, dataset.ignore_index) == (1, 2, 255)
    for i in range(len(dataset)):
        image, target = dataset[i]
        _check_pair(image, target, 32, 64, {0, 1, 2, 255})
        label_ids = dataset.label_ids(i)
        assert label_ids.dtype == np.uint8 and label_ids.shape == (32, 64) and dataset.has_label(i)
        assert ((label_ids == 1) == (target.numpy() == 1)).all()
        assert ((label_ids == 0) == (target.numpy() == 255)).all()
        assert (target.numpy()[(label_ids >= 2) & ~np.isin(label_ids, (31, 33, 34, 36, 37, 38, 39))] == 2).all()
        assert dataset.frame_name(i) + "_leftImg8bit.png" == os.path.basename(dataset.images[i])
    assert any((dataset[i][1] == 2).any() for i in range(len(dataset)))


@pytest.mark.parametrize("split", ["Static", "LostAndFound"])
def test_fishyscapes_gives_0_1_255_labels(prepared_world, split):
    dataset = Fishyscapes(prepared_world / "fishyscapes", split, TENSORS)
    assert len(dataset) == 2 and (dataset.train_id_in, dataset.train_id_out) == (0, 1)
    for i in range(len(dataset)):
        image, target = dataset[i]
        _check_pair(image, target, 32, 64, {0, 1, 255})
        np.testing.assert_array_equal(dataset.label_ids(i), target.numpy())
        assert dataset.has_label(i) and dataset.frame_name(i) == f"{i:04d}"
    assert any((dataset[i][1] == 1).any() for i in range(len(dataset)))


def test_fishyscapes_lost_and_found_reads_the_benchmarks_layout(prepared_world, tmp_path):
    # dataset_FishyLAF/labels/val/<frame>_fishy-labels.png over LostAndFound's own images (train and test),
    # used when fishyscapes/LostAndFound/ is absent; the frames sorted by name, as the benchmark sorts them
    os.symlink(prepared_world / "lost_and_found", tmp_path / "lost_and_found")
    (tmp_path / "fishyscapes").mkdir()
    labels = tmp_path / "dataset_FishyLAF" / "labels" / "val"
    labels.mkdir(parents=True)
    images = sorted((prepared_world / "lost_and_found" / "leftImg8bit").glob("t*/*/*_leftImg8bit.png"))
    picked = [next(p for p in images if "/train/" in str(p)), next(p for p in images if "/test/" in str(p))]
    rng = np.random.default_rng(0)
    written = {}
    for path in picked:
        name = path.name[:-len("_leftImg8bit.png")]
        written[name] = rng.choice(np.array([0, 1, 255], np.uint8), (32, 64))
        Image.fromarray(written[name]).save(labels / f"{name}_fishy-labels.png")
    dataset = Fishyscapes(tmp_path / "fishyscapes", "LostAndFound", TENSORS)
    assert [dataset.frame_name(i) for i in range(2)] == sorted(written)
    for i, name in enumerate(sorted(written)):
        assert os.path.basename(dataset.images[i]) == f"{name}_leftImg8bit.png" and os.path.isfile(dataset.images[i])
        np.testing.assert_array_equal(dataset.label_ids(i), written[name])
        np.testing.assert_array_equal(dataset[i][1].numpy(), written[name])
    # the original layout wins where it is there; a label whose image is missing is named
    os.symlink(prepared_world / "fishyscapes" / "LostAndFound", tmp_path / "fishyscapes" / "LostAndFound")
    assert Fishyscapes(tmp_path / "fishyscapes", "LostAndFound").frame_name(0) == "0000"
    (tmp_path / "fishyscapes" / "LostAndFound").unlink()
    Image.fromarray(written[name]).save(labels / "99_Nowhere_000000_000010_fishy-labels.png")
    with pytest.raises(FileNotFoundError, match=r"1 of 3 labels have no image: .*99_Nowhere_000000_000010_leftImg8bit"):
        Fishyscapes(tmp_path / "fishyscapes", "LostAndFound")


@pytest.mark.parametrize("cls, folder, suffix", [(RoadAnomaly21, "dataset_AnomalyTrack", ".jpg"),
                                                 (RoadObstacle21, "dataset_ObstacleTrack", ".webp")])
def test_segment_me_if_you_can_tracks_load_labelled_and_unlabelled_frames(prepared_world, cls, folder, suffix):
    dataset = cls(prepared_world / folder, TENSORS)
    assert len(dataset) == 3 and all(path.endswith(suffix) for path in dataset.images)
    assert sum(dataset.has_label(i) for i in range(3)) == 2
    for i in range(len(dataset)):
        image, target = dataset[i]
        _check_pair(image, target, 32, 64, {0, 1, 255})
        label_ids = dataset.label_ids(i)
        assert label_ids.dtype == np.uint8 and label_ids.shape == (32, 64)
        np.testing.assert_array_equal(label_ids, target.numpy())
        if dataset.has_label(i):
            assert set(np.unique(label_ids)) >= {0, 1}
            labels = prepared_world / folder / "labels_masks" / f"{dataset.frame_name(i)}_labels_semantic.png"
            np.testing.assert_array_equal(label_ids, _png(labels))
        else:
            assert (label_ids == 255).all()
        assert os.path.basename(dataset.images[i]) == dataset.frame_name(i) + suffix


def test_valsets_build_every_evaluation_set_from_root_split_transform(prepared_world):
    assert list(VALSETS) == ["LostAndFound", "Fishyscapes", "RoadAnomaly21", "RoadObstacle21"]
    folders = {"LostAndFound": "lost_and_found", "Fishyscapes": "fishyscapes",
               "RoadAnomaly21": "dataset_AnomalyTrack", "RoadObstacle21": "dataset_ObstacleTrack"}
    for name, build in VALSETS.items():
        dataset = build(prepared_world / folders[name], "LostAndFound", None)
        assert len(dataset) > 0 and dataset.ignore_index == 255
        assert isinstance(dataset[0][0], Image.Image)
    assert VALSETS["Fishyscapes"](prepared_world / "fishyscapes", "LostAndFound", None).split == "LostAndFound"


# ---- errors that say what to do


def test_a_missing_directory_names_it_the_pattern_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        Cityscapes(tmp_path / "cityscapes", "train")
    message = str(error.value)
    assert str(tmp_path / "cityscapes" / "leftImg8bit" / "train") in message
    assert "*/*_leftImg8bit.png" in message and "make_demo_world.py" in message
    os.makedirs(tmp_path / "fishyscapes" / "Static")
    with pytest.raises(FileNotFoundError, match=r"no files matching \*\.jpg in .*fishyscapes.Static"):
        Fishyscapes(tmp_path / "fishyscapes", "Static")
    with pytest.raises(FileNotFoundError, match="prepare_coco_segmentation.py"):
        COCO(tmp_path / "COCO" / "2017")
    with pytest.raises(FileNotFoundError, match="dataset_ObstacleTrack"):
        RoadObstacle21(tmp_path / "dataset_ObstacleTrack")


def test_an_image_without_its_label_names_the_expected_file_and_the_fix(prepared_world, tmp_path):
    shutil.copytree(prepared_world / "lost_and_found", tmp_path / "lost_and_found")
    label = next((tmp_path / "lost_and_found" / "gtCoarse" / "test").glob("*/*_labelTrainIds.png"))
    label.unlink()
    with pytest.raises(FileNotFoundError) as error:
        LostAndFound(tmp_path / "lost_and_found", "test")
    message = str(error.value)
    assert "1 of 3 images have no label" in message and str(label) in message
    assert "*_gtCoarse_labelTrainIds.png" in message and "prepare_lost_and_found.py" in message

    shutil.copytree(prepared_world / "fishyscapes", tmp_path / "fishyscapes")
    (tmp_path / "fishyscapes" / "Static" / "0001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"0001\.png is missing .*<name>\.png beside <name>\.jpg"):
        Fishyscapes(tmp_path / "fishyscapes", "Static")


def test_label_ids_are_writeable_arrays(prepared_world):
    label_ids = LostAndFound(prepared_world / "lost_and_found").label_ids(0)
    label_ids[0, 0] = 7  # later stages edit these in place; PIL's read-only views would fail here
    assert RoadObstacle21(prepared_world / "dataset_ObstacleTrack").label_ids(0).flags.writeable
