"""Stage 2 (meta_classification.py): the inference cache, the segment-search driver and the meta classifier.

The drivers run in-process on the tiny demo world's LostAndFound test split (3 images of 32 x 64) with the
tiny model. The helpers at the top are shared with test_evaluation.py and test_smiyc.py.
"""
import contextlib
import io
import json
import os
import shlex
import shutil

import h5py
import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

import config
import evaluation
import meta_classification
from src.cache import checkpoint_identity, is_current, read_attrs, read_cache, write_cache
from src.dataset import build_valset
from src.errors import UserError
from src.identity import image_identity, label_identities
from src.metaseg.segment_search import entropy_mask, load_segments, segment_search

MODEL = "DeepLabV3+_TinyResNet"
NAMES = ["00000", "00001", "00002"]  # the tiny LostAndFound test split has 3 images


def run_stage2(world, io_root, *argv, workers=0):
    """meta_classification.main with the tiny model on CPU."""
    args = meta_classification.get_args_parser().parse_args(
        ["--data_root", str(world), "--io_root", str(io_root), "-model", MODEL, "--device", "cpu",
         "--num_workers", str(workers), *argv])
    return meta_classification.main(config.parse_config(meta_classification.GROUPS, args))


def run_stage3(world, io_root, *argv):
    """evaluation.main with the tiny model on CPU; returns (its report, what it printed)."""
    args = evaluation.get_args_parser().parse_args(
        ["--data_root", str(world), "--io_root", str(io_root), "-model", MODEL, "--device", "cpu",
         "--num_workers", "0", *argv])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        report = evaluation.main(config.parse_config(evaluation.GROUPS, args))
    return report, printed.getvalue()


def assert_same_segments(a, b):
    """Two segment-search results (dicts of segment_search / load_segments) are identical."""
    for side in ("metrics", "gt_metrics"):
        assert a[side].keys() == b[side].keys()
        for key in a[side]:
            np.testing.assert_array_equal(np.asarray(a[side][key]), np.asarray(b[side][key]), err_msg=f"{side}/{key}")
    for key in ("components", "gt_components"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def stamp(path):
    """What changes when a file is rewritten (writes replace the file, so the inode changes)."""
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


# ---- the cache files


def test_cache_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 6, (19, 23, 37)).astype(np.float32)
    probs = softmax(logits, axis=0)
    max_logit = logits.max(axis=0)
    gt_train = rng.integers(0, 256, (23, 37), dtype=np.uint8)
    gt_label = rng.integers(0, 256, (23, 37), dtype=np.uint8)
    attrs = {"image_path": "lost_and_found/leftImg8bit/test/a/a_000000_000030_leftImg8bit.png",
             "frame_name": "a_000000_000030", "has_label": False, "checkpoint": "x.pth (12 bytes, modified 3)",
             "num_classes": 19, "threshold": 0.25}
    path = tmp_path / "00000.h5"
    write_cache(path, probs, max_logit, gt_train, gt_label, attrs)

    with h5py.File(path, "r") as f:
        assert f["probs"].dtype == np.float16 and f["max_logit"].dtype == np.float32
    cache = read_cache(path)
    assert cache["probs"].dtype == np.float32 and cache["probs"].shape == probs.shape
    # float16 rounds to nearest: relative error <= 2^-11 for normal values, absolute <= 2^-25 among the
    # subnormals below 2^-14 (softmax tails reach them)
    assert (np.abs(cache["probs"] - probs) <= 2.0 ** -11 * probs + 2.0 ** -25).all()
    assert cache["max_logit"].dtype == np.float32
    np.testing.assert_array_equal(cache["max_logit"], max_logit)
    for key, array in (("gt_train", gt_train), ("gt_label", gt_label)):
        assert cache[key].dtype == np.uint8
        np.testing.assert_array_equal(cache[key], array)
    for key, value in attrs.items():
        assert cache[key] == value and type(cache[key]) is type(value), key
    assert read_attrs(path) == attrs and is_current(path, attrs["checkpoint"])
    assert not is_current(path, "another checkpoint")
    assert set(read_cache(path, ("gt_train",))) == {"gt_train", *attrs}


def epoch0(checkpoint):
    return ["-epoch", "0", "--init_ckpt", str(checkpoint)]


def hinted_settings(message):
    """The settings of the meta_classification.py command a message names, as that script parses them."""
    argv = shlex.split(message.split("python meta_classification.py", 1)[1])
    return config.parse_config(meta_classification.GROUPS, meta_classification.get_args_parser().parse_args(argv))


def copy_io(prepared, tmp_path):
    io_root = tmp_path / "io"
    shutil.copytree(prepared, io_root)
    return io_root


def run_dir(io_root):
    return io_root / "LostAndFound" / f"{MODEL}_baseline"


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoints):
    return tiny_checkpoints


@pytest.fixture(scope="module")
def prepared(prepared_world, checkpoints, tmp_path_factory):
    """An io root where -prepare has cached the tiny LostAndFound test split with the trained checkpoint,
    evaluated as epoch 0 (--init_ckpt), so the cache stays valid when the io root is copied."""
    io_root = tmp_path_factory.mktemp("prepared_io")
    run_stage2(prepared_world, io_root, *epoch0(checkpoints[1]), "-prepare")
    return io_root


def test_prepare_writes_one_file_per_image_and_redoes_only_missing_or_truncated_ones(
        prepared_world, checkpoints, prepared, tmp_path, capsys):
    io_root = copy_io(prepared, tmp_path)
    cache_dir = run_dir(io_root) / "cache"
    assert sorted(os.listdir(cache_dir)) == [f"{name}.h5" for name in NAMES]
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static")
    before = [read_cache(cache_dir / f"{name}.h5") for name in NAMES]
    for i, cache in enumerate(before):
        assert cache["image_path"] == dataset.images[i] and cache["frame_name"] == dataset.frame_name(i)
        assert cache["has_label"] is True and cache["model"] == MODEL
        assert cache["checkpoint"] == checkpoint_identity(str(checkpoints[1]))
        np.testing.assert_array_equal(cache["gt_train"], dataset[i][1].numpy())
        np.testing.assert_array_equal(cache["gt_label"], dataset.label_ids(i))
        assert cache["probs"].shape == (19, 32, 64)
        np.testing.assert_allclose(cache["probs"].sum(axis=0), 1, atol=19 * 2.0 ** -11)

    untouched = stamp(cache_dir / "00000.h5")
    (cache_dir / "00001.h5").unlink()
    truncated = cache_dir / "00002.h5"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    assert not is_current(truncated, checkpoint_identity(str(checkpoints[1])))
    capsys.readouterr()
    run_stage2(prepared_world, io_root, *epoch0(checkpoints[1]), "-prepare")
    assert "-prepare: 1 of 3 images already cached" in capsys.readouterr().out
    assert stamp(cache_dir / "00000.h5") == untouched
    assert sorted(os.listdir(cache_dir)) == [f"{name}.h5" for name in NAMES], "a temporary file was left behind"
    for i in (1, 2):
        redone = read_cache(cache_dir / f"{NAMES[i]}.h5")
        for key in ("probs", "max_logit", "gt_train", "gt_label"):
            np.testing.assert_array_equal(redone[key], before[i][key], err_msg=key)


def test_prepare_with_writer_processes_writes_the_same_cache(prepared_world, checkpoints, tmp_path):
    serial, pooled = tmp_path / "serial", tmp_path / "pooled"
    run_stage2(prepared_world, serial, *epoch0(checkpoints[1]), "-prepare")
    run_stage2(prepared_world, pooled, *epoch0(checkpoints[1]), "-prepare", workers=2)
    for name in NAMES:
        a, b = (read_cache(run_dir(root) / "cache" / f"{name}.h5") for root in (serial, pooled))
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert np.array_equal(value, b[key]) if isinstance(value, np.ndarray) else value == b[key], key


def test_a_cache_of_another_checkpoint_is_refused_by_segment_and_evaluation_and_rebuilt_by_prepare(
        prepared_world, checkpoints, prepared, tmp_path, capsys):
    baseline, trained = checkpoints
    io_root = copy_io(prepared, tmp_path)
    other = epoch0(baseline)  # the same run folder, now for another checkpoint
    for stage in (lambda: run_stage2(prepared_world, io_root, *other, "-segment"),
                  lambda: run_stage3(prepared_world, io_root, *other)):
        with pytest.raises(UserError) as error:
            stage()
        message = str(error.value)
        assert "3 files of the inference cache were made by another checkpoint" in message
        assert checkpoint_identity(str(trained)) in message and checkpoint_identity(str(baseline)) in message
        assert "Rebuild them with: python meta_classification.py -prepare " in message
        hint = hinted_settings(message)
        assert hint.meta.metaseg_prepare and not hint.meta.segment_search and hint.evalset.VALSET == "LostAndFound"
        assert hint.evalset.val_epoch == 0 and hint.model.init_ckpt == str(baseline)
        assert hint.paths.io_root == str(io_root) and hint.paths.data_root == str(prepared_world)
    assert not (run_dir(io_root) / "segments_t0.7").exists()

    old = read_cache(run_dir(io_root) / "cache" / "00000.h5")["probs"]
    capsys.readouterr()
    run_stage2(prepared_world, io_root, *other, "-prepare", "-segment")
    assert "-prepare: 0 of 3 images already cached" in capsys.readouterr().out
    for name in NAMES:
        assert read_attrs(run_dir(io_root) / "cache" / f"{name}.h5")["checkpoint"] == checkpoint_identity(str(baseline))
        assert (run_dir(io_root) / "segments_t0.7" / f"{name}.npz").is_file()
    assert not np.array_equal(read_cache(run_dir(io_root) / "cache" / "00000.h5")["probs"], old)


def test_segments_of_another_checkpoint_are_refused_and_searched_again(prepared_world, checkpoints, prepared,
                                                                       tmp_path, capsys):
    baseline, trained = checkpoints
    io_root = copy_io(prepared, tmp_path)
    run_stage2(prepared_world, io_root, *epoch0(trained), "-segment")
    other = epoch0(baseline)  # the same run folder, now for another checkpoint
    run_stage2(prepared_world, io_root, *other, "-prepare")
    for stage in (lambda: run_stage2(prepared_world, io_root, *other, "-removal"),
                  lambda: run_stage3(prepared_world, io_root, *other, "-segment")):
        with pytest.raises(UserError, match="come from the cache of another checkpoint.*search again with: "
                                             "python meta_classification.py -segment"):
            stage()
    capsys.readouterr()
    run_stage2(prepared_world, io_root, *other, "-segment")
    assert "come from other inputs (another checkpoint's cache, other score maps, labels, images or metric families); searching again" in capsys.readouterr().out
    summary = json.loads((run_dir(io_root) / "segments_t0.7" / "segments.json").read_text())
    assert summary["checkpoint"].startswith(checkpoint_identity(str(baseline)) + ", labels ")


# ---- the segment search driver


def test_segment_search_covers_every_image_alike_with_0_and_2_workers_and_resumes(
        prepared_world, checkpoints, prepared, tmp_path, capsys):
    serial, pooled = copy_io(prepared, tmp_path / "serial"), copy_io(prepared, tmp_path / "pooled")
    run_stage2(prepared_world, serial, *epoch0(checkpoints[1]), "-segment")
    run_stage2(prepared_world, pooled, *epoch0(checkpoints[1]), "-segment", workers=2)
    segments_dir = run_dir(serial) / "segments_t0.7"
    assert sorted(os.listdir(segments_dir)) == [f"{name}.npz" for name in NAMES] + ["segments.json"]
    found = 0
    for name in NAMES:
        result = load_segments(segments_dir / f"{name}.npz")
        assert_same_segments(result, load_segments(run_dir(pooled) / "segments_t0.7" / f"{name}.npz"))
        cache = read_cache(run_dir(serial) / "cache" / f"{name}.h5")
        assert_same_segments(result, segment_search(cache["probs"], cache["gt_train"], cache["gt_label"], 0.7, 2,
                                                    cache["entropy"]))
        found += len(result["metrics"]["iou0"])
    assert found > 0, "the tiny world gave no segment: this test checks nothing"
    summary = json.loads((segments_dir / "segments.json").read_text())
    assert summary["checkpoint"].startswith(checkpoint_identity(str(checkpoints[1])) + ", labels ")
    assert summary["threshold"] == 0.7 and summary["num_images"] == 3

    expected = load_segments(segments_dir / "00001.npz")
    (segments_dir / "00001.npz").unlink()
    kept = {name: stamp(segments_dir / f"{name}.npz") for name in ("00000", "00002")}
    capsys.readouterr()
    run_stage2(prepared_world, serial, *epoch0(checkpoints[1]), "-segment")
    assert "2 of 3 frames already searched" in capsys.readouterr().out
    assert {name: stamp(segments_dir / f"{name}.npz") for name in kept} == kept
    assert_same_segments(load_segments(segments_dir / "00001.npz"), expected)


# ---- the meta classifier


def test_removal_writes_a_classifier_that_agrees_with_the_segment_results(
        prepared_world, checkpoints, prepared, tmp_path, capsys):
    io_root = copy_io(prepared, tmp_path)
    run_stage2(prepared_world, io_root, *epoch0(checkpoints[1]), "-segment", "-removal")
    segments_dir = run_dir(io_root) / "segments_t0.7"
    results = [load_segments(segments_dir / f"{name}.npz") for name in NAMES]
    iou0 = np.concatenate([r["metrics"]["iou0"] for r in results]).astype(int)
    image = np.concatenate([np.full(len(r["metrics"]["iou0"]), i) for i, r in enumerate(results)])
    assert 0 < iou0.sum() < len(iou0), "the tiny world needs both kinds of segments for this test"

    with np.load(segments_dir / "meta_classifier.npz") as saved:
        np.testing.assert_array_equal(saved["iou0"], iou0)
        np.testing.assert_array_equal(saved["image"], image)
        prob, removed = saved["fp_probability"], saved["removed"]
    assert prob.shape == iou0.shape and ((prob >= 0) & (prob <= 1)).all()
    np.testing.assert_array_equal(removed, prob >= 0.5)

    summary = json.loads((segments_dir / "meta_classifier.json").read_text())
    assert summary["num_segments"] == len(iou0) and summary["num_false_positives"] == iou0.sum()
    assert summary["removed"] == removed.sum() and summary["removed_false_positives"] == (removed & (iou0 == 1)).sum()
    assert summary["auroc"] == pytest.approx(roc_auc_score(iou0, prob))
    assert summary["ap"] == pytest.approx(average_precision_score(iou0, prob))
    assert summary["accuracy"] == pytest.approx(accuracy_score(iou0, prob >= 0.5))
    assert summary["meta_cv"] == "kfold" and len(summary["features"]) == 75
    assert not {"iou", "iou0", "prc"} & set(summary["features"])
    assert (f"-removal: meta classifier ({summary['meta_classifier']}, kfold) on {len(iou0)} segments ({iou0.sum()} false positives)"
            in capsys.readouterr().out)


def test_without_segments_removal_stops_saying_why(prepared_world, checkpoints, prepared, tmp_path):
    io_root = copy_io(prepared, tmp_path)
    with pytest.raises(UserError, match=r"^-removal: the meta classifier cannot train: no OoD segments were found"):
        run_stage2(prepared_world, io_root, *epoch0(checkpoints[1]), "-threshold", "1.0")
    segments_dir = run_dir(io_root) / "segments_t1.0"
    for name in NAMES:
        assert load_segments(segments_dir / f"{name}.npz")["metrics"]["iou0"] == []
    assert not (segments_dir / "meta_classifier.npz").exists()



def bridged_scene(threshold):
    """probs (19, 5, 11) float32, gt_train, gt_label: two uniform-softmax blocks joined by one pixel whose
    normalised entropy is >= threshold in float32 but < threshold once its probabilities are rounded to float16:
    one segment from the float32 softmax, two from a float16 copy."""
    top = np.linspace(0.3, 0.95, 200_001, dtype=np.float32)
    candidates = np.concatenate([top[None], np.repeat(((1 - top) / 18)[None], 18, axis=0)])[:, None, :]
    rounded = candidates.astype(np.float16).astype(np.float32)
    flips = np.flatnonzero((entropy_mask(candidates, threshold) == 1) & (entropy_mask(rounded, threshold) == 0))
    assert len(flips), "no softmax vector near the threshold changes side in float16"
    probs = np.full((19, 5, 11), 0.02 / 18, dtype=np.float32)
    probs[0] = 0.98
    probs[:, :, :5] = probs[:, :, 6:] = 1 / 19
    probs[:, 2, 5] = candidates[:, 0, flips[0]]
    return probs, np.ones((5, 11), np.uint8), np.ones((5, 11), np.uint8)


def test_segments_of_the_float16_cache_equal_those_of_the_float32_softmax(prepared_world, checkpoints, tmp_path):
    """-prepare caches the softmax as write_cache stores it; -segment must find the segments of that float32
    softmax. Here a one-pixel bridge between two segments sits right at the threshold."""
    probs, gt_train, gt_label = bridged_scene(0.7)
    expected = segment_search(probs, gt_train, gt_label, 0.7, 2)
    assert len(expected["metrics"]["S"]) == 1
    cache_dir = run_dir(tmp_path) / "cache"
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static")
    for name, label, image in zip(NAMES, label_identities(dataset), dataset.images):
        write_cache(cache_dir / f"{name}.h5", probs, np.log(probs.max(axis=0)), gt_train, gt_label,
                    {"image_path": "", "frame_name": name, "has_label": True,
                     "checkpoint": checkpoint_identity(str(checkpoints[1])), "labels": label, "model": MODEL,
                     **image_identity(image)})
    run_stage2(prepared_world, tmp_path, *epoch0(checkpoints[1]), "-segment")
    for name in NAMES:
        found = load_segments(run_dir(tmp_path) / "segments_t0.7" / f"{name}.npz")
        assert found["metrics"]["S"] == expected["metrics"]["S"]
        np.testing.assert_array_equal(found["components"], expected["components"])
