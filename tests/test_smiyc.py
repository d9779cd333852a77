"""The SegmentMeIfYouCan tracks: loaders on the demo world's sets, the whole pipeline on RoadObstacle21 with
labelled and unlabelled frames, and the submission export."""
import math
import os
import re
import shutil
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.stats import entropy
from sklearn.metrics import roc_auc_score

import config
import evaluation
from src.cache import cache_path, read_cache
from src.dataset import RoadAnomaly21, RoadObstacle21, build_valset
from src.errors import UserError
from src.metaseg.segment_search import load_segments
from tests.test_meta_classification import MODEL, run_stage2, run_stage3

TRACKS = [("RoadAnomaly21", "dataset_AnomalyTrack", ".jpg", "JPEG"),
          ("RoadObstacle21", "dataset_ObstacleTrack", ".webp", "WEBP")]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TRAINED = f"{MODEL}_entropy_epoch_1_alpha_0.9"


def png(path):
    with Image.open(path) as image:
        return np.array(image)


def track(world, name):
    """The evaluation set `name` where the drivers find it under data root `world`."""
    args = evaluation.get_args_parser().parse_args(["--data_root", str(world), "-val", name])
    cfg = config.parse_config(evaluation.GROUPS, args)
    return build_valset(name, config.valset_root(cfg), cfg.evalset.fs_split)


@pytest.mark.parametrize("name, folder, suffix, image_format", TRACKS)
def test_loaders_decode_the_tracks_and_flag_unlabelled_frames(prepared_world, name, folder, suffix, image_format):
    dataset = track(prepared_world, name)
    root = prepared_world / folder
    assert dataset.images == sorted(str(p) for p in (root / "images").glob(f"*{suffix}"))
    assert (dataset.train_id_in, dataset.train_id_out, dataset.ignore_index) == (0, 1, 255)
    labels = root / "labels_masks"
    flags = [dataset.has_label(i) for i in range(len(dataset))]
    assert flags == [(labels / f"{dataset.frame_name(i)}_labels_semantic.png").is_file() for i in range(len(dataset))]
    assert sum(flags) == 2 and len(flags) == 3  # the tiny world: 3 frames, 2 labelled
    for i in range(len(dataset)):
        image, target = dataset[i]
        with Image.open(dataset.images[i]) as file:
            assert file.format == image_format
            decoded = (np.asarray(file.convert("RGB"), dtype=np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
        np.testing.assert_allclose(image.numpy().transpose(1, 2, 0), decoded, atol=1e-5)
        if flags[i]:
            label = png(labels / f"{dataset.frame_name(i)}_labels_semantic.png")
            assert set(np.unique(label)) <= {0, 1, 255} and 1 in label and 0 in label
        else:
            label = np.full(decoded.shape[:2], 255, dtype=np.uint8)
        np.testing.assert_array_equal(target.numpy(), label)
        np.testing.assert_array_equal(dataset.label_ids(i), label)


@pytest.fixture(scope="module")
def obstacles(tiny_checkpoints, prepared_world, tmp_path_factory):
    """RoadObstacle21 through -prepare -segment -removal, evaluation and --export_smiyc with the tiny model trained
    for 1 epoch (evaluated as epoch 1)."""
    baseline, trained = tiny_checkpoints
    io_root = tmp_path_factory.mktemp("smiyc_io")
    (io_root / "weights" / "entropy").mkdir(parents=True)
    shutil.copy2(trained, io_root / "weights" / "entropy" / trained.name)
    common = ["-val", "RoadObstacle21", "-epoch", "1", "--init_ckpt", str(baseline)]
    run_stage2(prepared_world, io_root, *common)
    report, printed = run_stage3(prepared_world, io_root, *common, "--num_visualizations", "3")
    export = io_root / "submission"
    run_stage3(prepared_world, io_root, *common, "--export_smiyc", str(export))
    return SimpleNamespace(dataset=track(prepared_world, "RoadObstacle21"), report=report, printed=printed,
                           export=export, run=io_root / "RoadObstacle21" / TRAINED)


def labels_of(dataset, i):
    """(H, W) uint8 label png of frame i (0, 1, 255), or None for an unlabelled frame."""
    path = os.path.join(dataset.root, "labels_masks", f"{dataset.frame_name(i)}_labels_semantic.png")
    return png(path) if os.path.isfile(path) else None


def test_obstacle_track_searches_segments_with_obstacle_index_1_inside_the_labelled_road(obstacles):
    dataset = obstacles.dataset
    total = 0
    for i in range(len(dataset)):
        cache = read_cache(cache_path(obstacles.run / "cache", i), ("gt_train",))
        assert cache["has_label"] == dataset.has_label(i) and cache["frame_name"] == dataset.frame_name(i)
        result = load_segments(obstacles.run / "segments_t0.7" / f"{i:05d}.npz")
        label = labels_of(dataset, i)
        if label is None:
            assert (cache["gt_train"] == 255).all()
            assert not result["components"].any() and not result["gt_components"].any()
            continue
        np.testing.assert_array_equal(cache["gt_train"], label)
        np.testing.assert_array_equal(result["gt_components"] != 0, label == 1)
        assert not (result["components"][label == 255]).any(), "a segment reaches into the void"
        total += len(result["metrics"]["iou0"])
    assert total > 0
    assert (obstacles.run / "segments_t0.7" / "meta_classifier.npz").is_file()


def test_evaluation_leaves_unlabelled_frames_out_and_says_how_many(obstacles):
    assert "RoadObstacle21: the metrics score 2 frames; left out: 1 (no labels: " in obstacles.printed
    assert obstacles.report["num_unlabelled"] == 1
    dataset = obstacles.dataset
    scores, is_ood = [], []
    for i in range(len(dataset)):
        label = labels_of(dataset, i)
        if label is None:
            continue
        probs = read_cache(cache_path(obstacles.run / "cache", i), ("probs",))["probs"]
        valid = label != 255
        scores.append((entropy(probs.astype(np.float64), axis=0) / math.log(19))[valid])
        is_ood.append(label[valid] == 1)
    scores, is_ood = np.concatenate(scores), np.concatenate(is_ood)
    exact = obstacles.report["rows"]["entropy training (epoch 1)"]["protocols"]["exact"]
    pixel = exact["pixel"]["entropy"]
    assert (pixel["num_ood"], pixel["num_in"]) == (is_ood.sum(), (~is_ood).sum())
    assert pixel["auroc"] == pytest.approx(roc_auc_score(is_ood, scores), abs=1e-4)
    component = exact["component"]
    assert (component["segsize"], component["instsize"]) == (50, 10)  # an obstacle-type track


def test_export_writes_one_float16_score_map_per_frame(obstacles):
    dataset = obstacles.dataset
    assert sorted(os.listdir(obstacles.export)) == sorted(f"{dataset.frame_name(i)}.hdf5" for i in range(len(dataset)))
    for i in range(len(dataset)):
        with h5py.File(obstacles.export / f"{dataset.frame_name(i)}.hdf5", "r") as f:
            assert list(f) == ["value"]
            value = f["value"][...]
        with Image.open(dataset.images[i]) as image:
            width, height = image.size
        assert value.dtype == np.float16 and value.shape == (height, width)
        probs = read_cache(cache_path(obstacles.run / "cache", i), ("probs",))["probs"]
        # values in [0, 1]: float16 rounding moves them by at most 2^-12
        np.testing.assert_allclose(value, entropy(probs.astype(np.float64), axis=0) / math.log(19), rtol=0,
                                   atol=2.0 ** -11)


@pytest.fixture(scope="module")
def unlabelled(tiny_checkpoints, prepared_world, tmp_path_factory):
    """A RoadObstacle21 download without labels_masks/ (as the benchmark's test frames come), after -prepare
    -segment: (data root, io root, common flags)."""
    baseline, trained = tiny_checkpoints
    data_root = tmp_path_factory.mktemp("smiyc_no_masks")
    shutil.copytree(prepared_world / "dataset_ObstacleTrack" / "images", data_root / "dataset_ObstacleTrack" / "images")
    io_root = tmp_path_factory.mktemp("smiyc_no_masks_io")
    common = ["-val", "RoadObstacle21", "-epoch", "0", "--init_ckpt", str(trained)]
    run_stage2(data_root, io_root, *common, "-prepare", "-segment")
    return data_root, io_root, common


def test_export_needs_no_labels(unlabelled, tmp_path):
    data_root, io_root, common = unlabelled
    run_stage3(data_root, io_root, *common, "--export_smiyc", str(tmp_path))
    assert len(list(tmp_path.glob("*.hdf5"))) == 3


def assert_says_no_frame_is_labelled(error, tmp_path_factory):
    # the temporary paths in the message are named after tests; leave them out of the check
    message = str(error.value).replace(str(tmp_path_factory.getbasetemp()), "<tmp>")
    assert re.search(r"(?i)label", message) and re.search(r"(?i)frame", message), message


@pytest.mark.parametrize("stages", [[], ["-pixel"], ["-segment"]], ids=["default", "pixel", "segment"])
def test_evaluation_without_labelled_frames_says_so(unlabelled, tmp_path_factory, stages):
    data_root, io_root, common = unlabelled
    with pytest.raises(UserError) as error:
        run_stage3(data_root, io_root, *common, *stages, "--num_visualizations", "0")
    assert_says_no_frame_is_labelled(error, tmp_path_factory)


def test_removal_without_labelled_frames_says_so(unlabelled, tmp_path_factory):
    data_root, io_root, common = unlabelled
    with pytest.raises(UserError) as error:
        run_stage2(data_root, io_root, *common, "-removal")
    assert_says_no_frame_is_labelled(error, tmp_path_factory)


def write_track(root, folder, suffix, labelled, unlabelled):
    """A track of 2x3 frames: `labelled` names with a label png, `unlabelled` without."""
    os.makedirs(root / folder / "images")
    os.makedirs(root / folder / "labels_masks")
    for name in [*labelled, *unlabelled]:
        Image.new("RGB", (3, 2)).save(root / folder / "images" / f"{name}{suffix}")
    for name in labelled:
        Image.fromarray(np.array([[0, 1, 255], [0, 0, 1]], dtype=np.uint8)).save(
            root / folder / "labels_masks" / f"{name}_labels_semantic.png")


def test_tracks_score_the_benchmarks_validation_frames_and_say_which_they_leave_out(tmp_path):
    # ObstacleTrack-validation: scene `validation` without validation_19 and validation_21 .. _29 (a prefix rule:
    # validation_2 stays, validation_190 goes); AnomalyTrack-validation: validation0000 .. validation0009
    obstacle = [f"validation_{k}" for k in (*range(1, 31), 190)] + ["curvy-street_cones_1"]
    write_track(tmp_path, "dataset_ObstacleTrack", ".webp", obstacle, ["gravel_dog_2"])
    dataset = RoadObstacle21(str(tmp_path / "dataset_ObstacleTrack"))
    scored = [dataset.frame_name(i) for i in range(len(dataset)) if dataset.has_label(i)]
    assert scored == sorted(f"validation_{k}" for k in (*range(1, 19), 20, 30)) and len(scored) == 20
    not_listed = "not in the benchmark's ObstacleTrack-validation"
    assert dataset.left_out == {"gravel_dog_2": "no labels", "curvy-street_cones_1": not_listed,
                                **{f"validation_{k}": not_listed for k in (19, *range(21, 30), 190)}}
    i = [dataset.frame_name(j) for j in range(len(dataset))].index("validation_19")
    assert (dataset.label_ids(i) == 255).all() and dataset.label_files(i) == []

    write_track(tmp_path, "dataset_AnomalyTrack", ".jpg", [f"validation{k:04d}" for k in range(12)], ["cow0000"])
    dataset = RoadAnomaly21(str(tmp_path / "dataset_AnomalyTrack"))
    assert sum(dataset.has_label(i) for i in range(len(dataset))) == 10
    assert dataset.left_out == {"cow0000": "no labels",
                                "validation0010": "not in the benchmark's AnomalyTrack-validation",
                                "validation0011": "not in the benchmark's AnomalyTrack-validation"}
