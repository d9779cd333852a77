"""Stage 3 (evaluation.py): segment counts, SML statistics, the float16 cache's effect, results files, errors.

The drivers run in-process on the tiny demo world's LostAndFound test split with the tiny model; see
test_meta_classification.py for the shared helpers.
"""
import glob
import json
import math
import shlex
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import entropy
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from src.cache import cache_path, checkpoint_identity, read_cache, write_cache
from src.dataset import build_valset
from src.errors import UserError
from src.identity import image_identity, label_identities
from src.metaseg.segment_search import load_segments, segment_search
from src.model import build_model, load_checkpoint
from src.evaluation.measure import binary_labels
from src.evaluation.pixel_metrics import PixelMetrics
from src.evaluation.plots import frames_to_show
from src.evaluation.protocols import build_protocol, evaluate_frames
from src.evaluation.score_maps import read_score_map, score_map_path
from src.evaluation.scores import ClassStats, meta_classified_score
from src.external_maps import meta_filtered_score, removed_mask
from src.evaluation.segment_errors import count_segment_errors
from tests.test_meta_classification import MODEL, NAMES, hinted_settings, run_stage2, run_stage3

TRAINED = f"{MODEL}_entropy_epoch_1_alpha_0.9"
ROWS = ["baseline", "entropy training (epoch 1)", "+ meta classifier"]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@pytest.fixture(scope="module")
def run(tiny_checkpoints, prepared_world, tmp_path_factory):
    """The demo's evaluation steps on the tiny world: the trained checkpoint (epoch 1) through -prepare -segment
    -removal and an evaluation while the baseline has no cache (`first`), then the baseline's cache and
    segments, SML statistics of both, and the full evaluation (`second`): each (report, printed text)."""
    baseline, trained = tiny_checkpoints
    io_root = tmp_path_factory.mktemp("evaluation_io")
    checkpoint = io_root / "weights" / "entropy" / trained.name
    checkpoint.parent.mkdir(parents=True)
    shutil.copy2(trained, checkpoint)
    common = ["--init_ckpt", str(baseline)]
    run_stage2(prepared_world, io_root, *common, "-epoch", "1")
    first = run_stage3(prepared_world, io_root, *common, "-epoch", "1", "--num_visualizations", "2")
    run_stage2(prepared_world, io_root, *common, "-epoch", "0", "-prepare", "-segment")
    run_stage3(prepared_world, io_root, *common, "-epoch", "1", "--sml_stats")
    second = run_stage3(prepared_world, io_root, *common, "-epoch", "1", "--num_visualizations", "2")
    return SimpleNamespace(io_root=io_root, baseline=baseline, checkpoint=checkpoint, first=first, second=second,
                           results=io_root / "results" / "LostAndFound" / TRAINED / "t0.7")


def load_model(checkpoint):
    model = build_model(MODEL)
    load_checkpoint(model, str(checkpoint))
    return model.eval()


def logits_of(model, image_path):
    """(19, H, W) float32 logits of one image file, normalised here by hand (ImageNet mean and std)."""
    with Image.open(image_path) as file:
        image = (np.asarray(file.convert("RGB"), dtype=np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    with torch.no_grad():
        return model(torch.from_numpy(image.transpose(2, 0, 1).copy())[None])[0]


def normalized_entropy_reference(probs):
    return entropy(probs.astype(np.float64), axis=0) / math.log(probs.shape[0])


def sklearn_metrics(scores, is_ood):
    fpr, tpr, _ = roc_curve(is_ood, scores)
    return {"auroc": roc_auc_score(is_ood, scores), "ap": average_precision_score(is_ood, scores),
            "fpr95": fpr[np.searchsorted(tpr, 0.95)]}


# ---- segment counts on a constructed case

# Three LostAndFound-like 20 x 30 scenes: road (train id 1) predicted confidently, ground-truth obstacles
# (train id 2), uniform softmax (normalised entropy 1) where a segment should be, void (255). Rectangles
# are (row0, row1, col0, col1), ends exclusive.
SCENES = [
    # P1 covers parts of O1 and O2 (one true segment hitting two obstacles); P2 and P3 touch nothing; O3, O4 missed
    dict(objects=[(2, 6, 2, 6), (2, 6, 10, 14), (12, 16, 2, 6), (12, 16, 20, 24)],
         uniform=[(3, 8, 4, 12), (12, 15, 10, 15), (17, 19, 20, 23)], void=[]),
    # P4 only touches O5's corner diagonally (a false positive, O5 missed); the uniform block at the top is all
    # void (no segment); P6 is half void and its other half covers part of O6
    dict(objects=[(5, 9, 5, 9), (14, 18, 20, 26)],
         uniform=[(9, 12, 9, 13), (0, 4, 20, 30), (13, 19, 16, 22)], void=[(0, 4, 20, 30), (13, 19, 16, 18)]),
    # no segment, one missed obstacle
    dict(objects=[(10, 14, 10, 14)], uniform=[], void=[]),
]
# by hand, segments in scan order (first pixel row-major): image 0: P1 (3, 4), P2 (12, 10), P3 (17, 20);
# image 1: P4 (9, 9), P6 (13, 18)
HAND_IOU0 = [[0, 1, 1], [1, 0], []]
HAND_SIZES = [[5 * 8, 3 * 5, 2 * 3], [3 * 4, 6 * 4], []]
HAND_GT_IOU0 = [[0, 0, 1, 1], [1, 0], [1]]
# (removed per image, FP, FN): FP = kept segments touching no obstacle, FN = obstacles no kept segment touches
HAND_COUNTS = [
    ([[False] * 3, [False] * 2, []], 3, 4),
    ([[True, True, False], [False, True], []], 2, 7),  # keeps P3 and P4 only: every obstacle is missed
    ([[False, True, True], [True, False], []], 0, 4),  # removes exactly the false positives
]


def scene_arrays(objects, uniform, void, shape=(20, 30)):
    """probs (19, H, W) float32, gt_train and gt_label (H, W) uint8 of a constructed scene."""
    probs = np.full((19, *shape), 0.1 / 18, dtype=np.float32)
    probs[0] = 0.9
    gt_train = np.ones(shape, dtype=np.uint8)
    gt_label = np.ones(shape, dtype=np.uint8)  # LostAndFound label id 1: free road
    for r0, r1, c0, c1 in objects:
        gt_train[r0:r1, c0:c1] = 2
        gt_label[r0:r1, c0:c1] = 5  # a hazard's label id
    for r0, r1, c0, c1 in uniform:
        probs[:, r0:r1, c0:c1] = 1 / 19
    for r0, r1, c0, c1 in void:
        gt_train[r0:r1, c0:c1] = 255
        gt_label[r0:r1, c0:c1] = 0
    return probs, gt_train, gt_label


def test_segment_errors_of_a_constructed_case_equal_the_hand_count():
    results = [segment_search(*scene_arrays(**scene), 0.7, 2) for scene in SCENES]
    assert [r["metrics"]["iou0"] for r in results] == HAND_IOU0
    assert [r["metrics"]["S"] for r in results] == HAND_SIZES
    assert [r["gt_metrics"]["iou0"] for r in results] == HAND_GT_IOU0
    for removed, fp, fn in HAND_COUNTS:
        assert count_segment_errors(results, [np.array(r, dtype=bool) for r in removed]) == (fp, fn)
    assert count_segment_errors(results) == (3, sum(map(sum, HAND_GT_IOU0)))


def evaluate_constructed_scenes(tiny_checkpoints, prepared_world, tmp_path, removed, *stages, scenes=SCENES):
    """The constructed `scenes` as the cache of the tiny LostAndFound split, searched by -segment, with a hand-made
    meta classifier file removing `removed` (one list of bools per image): the report of evaluation.py."""
    _, trained = tiny_checkpoints
    run_folder = tmp_path / "LostAndFound" / f"{MODEL}_baseline"
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static")
    labels = label_identities(dataset)
    for i, scene in enumerate(scenes):
        probs, gt_train, gt_label = scene_arrays(**scene)
        attrs = {"image_path": "", "frame_name": NAMES[i], "has_label": True,
                 "checkpoint": checkpoint_identity(str(trained)), "labels": labels[i], "model": MODEL,
                 **image_identity(dataset.images[i])}
        max_logit = np.log(probs.max(axis=0))  # logits that give these probabilities
        write_cache(cache_path(run_folder / "cache", i), probs, max_logit, gt_train, gt_label, attrs)
    common = ["-epoch", "0", "--init_ckpt", str(trained)]
    run_stage2(prepared_world, tmp_path, *common, "-segment")
    np.savez(run_folder / "segments_t0.7" / "meta_classifier.npz", removed=np.concatenate(removed).astype(bool),
             image=np.concatenate([np.full(len(r), i) for i, r in enumerate(removed)]).astype(int))
    return run_stage3(prepared_world, tmp_path, *common, *stages, "--num_visualizations", "0")


def test_evaluation_counts_hand_made_segments_and_removals(tiny_checkpoints, prepared_world, tmp_path):
    removed, fp, fn = HAND_COUNTS[1]
    report, printed = evaluate_constructed_scenes(tiny_checkpoints, prepared_world, tmp_path, removed, "-segment",
                                                  "-pixel")
    assert report["rows"]["baseline"]["segments"] == {"fp": 3, "fn": 4}
    # these caches hold no logsumexp (as caches made before it was cached): the energy score is skipped, saying so
    assert "Energy skipped" in printed and "-prepare" in printed.split("Energy skipped")[1].splitlines()[0]
    baseline = report["rows"]["baseline"]["protocols"]["exact"]["pixel"]
    assert "energy" not in baseline and "max_logit" in baseline
    assert report["rows"]["+ meta classifier"]["segments"] == {"fp": fp, "fn": fn}


def assert_identical(a, b):
    """Two (nested) results dicts hold the same keys and bit-identical numbers and arrays."""
    assert isinstance(b, type(a)) or np.isscalar(a)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_identical(a[key], b[key])
    else:
        assert np.array_equal(a, b, equal_nan=True)


def test_meta_classifier_row_without_removals_is_the_entropy_row(tiny_checkpoints, prepared_world, tmp_path):
    removed, _, _ = HAND_COUNTS[0]
    rows = evaluate_constructed_scenes(tiny_checkpoints, prepared_world, tmp_path, removed)[0]["rows"]
    assert not any(map(any, removed))
    meta, baseline = rows["+ meta classifier"]["protocols"]["exact"], rows["baseline"]["protocols"]["exact"]
    assert_identical(meta["pixel"]["entropy+meta"], baseline["pixel"]["entropy"])
    assert_identical(meta["component"], baseline["component"])
    assert_identical(rows["+ meta classifier"]["component_at_t"], rows["baseline"]["component_at_t"])


@pytest.mark.parametrize("reach", ["0", "0.5"])
def test_export_meta_writes_the_maps_the_meta_classifier_row_scores(tiny_checkpoints, prepared_world, tmp_path,
                                                                    reach):
    out = tmp_path / "submission"
    evaluate_constructed_scenes(tiny_checkpoints, prepared_world, tmp_path, COVERED_REMOVED, "--export_smiyc",
                                str(out), "--export_meta", "--removal_reach", reach, scenes=COVERED)
    for i, scene in enumerate(COVERED):
        probs, gt_train, _ = scene_arrays(**scene)
        entropy_map = read_cache(cache_path(tmp_path / "LostAndFound" / f"{MODEL}_baseline" / "cache", i),
                                 ("entropy",))["entropy"]
        segments = load_segments(str(tmp_path / "LostAndFound" / f"{MODEL}_baseline" / "segments_t0.7" / f"{i:05d}.npz"))
        removed = np.asarray(COVERED_REMOVED[i])
        expected = (meta_classified_score(entropy_map, removed_mask(segments["components"], removed), 0.7)
                    if reach == "0" else meta_filtered_score(entropy_map, segments["components"], removed,
                                                             gt_train == 255, 0.0, 0.7, 0.5))
        frame = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "test").frame_name(i)
        exported = read_score_map(score_map_path(str(out), frame))
        assert np.array_equal(exported, expected.astype(np.float16).astype(np.float32))
        in_removed = removed_mask(segments["components"], removed)
        assert (exported[in_removed] < 0.7).all() and np.array_equal(exported[~in_removed & (entropy_map >= 0.7)],
                                                                      entropy_map[~in_removed & (entropy_map >= 0.7)]
                                                                      .astype(np.float16).astype(np.float32))


# Three obstacles, each under a uniform-softmax segment, and one false-positive segment; the meta classifier
# removes the first obstacle's segment (a third of the OoD pixels) and the false positive.
COVERED = [dict(objects=[(2, 6, 2, 6)], uniform=[(2, 6, 2, 6), (12, 15, 10, 15)], void=[]),
           dict(objects=[(5, 9, 5, 9)], uniform=[(5, 9, 5, 9)], void=[]),
           dict(objects=[(10, 14, 10, 14)], uniform=[(10, 14, 10, 14)], void=[])]
COVERED_REMOVED = [[True, True], [False], [False]]


def test_meta_classifier_row_ranks_wrongly_removed_obstacles_above_the_road(tiny_checkpoints, prepared_world,
                                                                            tmp_path):
    """The removed segments' pixels fall below the kept segments but stay above the confident road, so the curves
    reach the wrongly removed obstacle before the road and FPR95 stays meaningful; scoring them 0 (below all
    road pixels) made it 100%."""
    rows = evaluate_constructed_scenes(tiny_checkpoints, prepared_world, tmp_path, COVERED_REMOVED, "--removal_reach",
                                       "0", scenes=COVERED)[0]["rows"]
    pixel = rows["+ meta classifier"]["protocols"]["exact"]["pixel"]["entropy+meta"]
    scores, zeroed, is_ood = [], [], []
    for i, scene in enumerate(COVERED):
        probs, gt_train, _ = scene_arrays(**scene)
        score = normalized_entropy_reference(probs)
        in_removed = np.zeros(score.shape, dtype=bool)
        for box, removed in zip(scene["uniform"], COVERED_REMOVED[i]):
            r0, r1, c0, c1 = box
            in_removed[r0:r1, c0:c1] = removed
        assert np.all(score[in_removed] > 0.7 - 1e-6)
        scores.append(np.where(in_removed, np.minimum(0.7 * score, 0.7 - 1e-7), score).ravel())
        zeroed.append(np.where(in_removed, 0.0, score).ravel())
        is_ood.append(gt_train.ravel() == 2)
    is_ood = np.concatenate(is_ood)
    expected = sklearn_metrics(np.concatenate(scores), is_ood)
    for key in ("auroc", "ap", "fpr95"):
        assert pixel[key] == pytest.approx(expected[key], abs=1e-4)
    assert pixel["fpr95"] < 0.05
    assert sklearn_metrics(np.concatenate(zeroed), is_ood)["fpr95"] == 1.0


# ---- on the tiny world


def test_segment_counts_after_the_meta_classifier_count_the_kept_false_positives(run):
    rows = run.second[0]["rows"]
    segments_dir = run.io_root / "LostAndFound" / TRAINED / "segments_t0.7"
    summary = json.loads((segments_dir / "meta_classifier.json").read_text())
    assert rows[ROWS[1]]["segments"]["fp"] == summary["num_false_positives"]
    assert rows[ROWS[2]]["segments"]["fp"] == summary["num_false_positives"] - summary["removed_false_positives"]

    results = [load_segments(segments_dir / f"{name}.npz") for name in NAMES]
    assert rows[ROWS[1]]["segments"]["fn"] == sum(sum(r["gt_metrics"]["iou0"]) for r in results)
    with np.load(segments_dir / "meta_classifier.npz") as saved:
        removed, image = saved["removed"], saved["image"]
    missed = 0  # slow reference: an obstacle is missed when none of its pixels lies in a kept segment
    for i, r in enumerate(results):
        kept = np.flatnonzero(~removed[image == i]) + 1
        in_kept = np.isin(np.abs(r["components"]), kept)
        for k in np.unique(np.abs(r["gt_components"][r["gt_components"] != 0])):
            missed += not in_kept[np.abs(r["gt_components"]) == k].any()
    assert rows[ROWS[2]]["segments"]["fn"] == missed


def test_sml_statistics_equal_a_direct_computation(run, prepared_world):
    images = sorted(glob.glob(str(prepared_world / "cityscapes" / "leftImg8bit" / "train" / "*" / "*_leftImg8bit.png")))
    assert images
    for checkpoint in (run.baseline, run.checkpoint):
        saved = json.loads(checkpoint.with_name(checkpoint.stem + "_sml.json").read_text())
        assert saved.pop("checkpoint") == checkpoint_identity(str(checkpoint))
        stats = ClassStats.from_dict(saved)
        model = load_model(checkpoint)
        max_logit, pred = zip(*(logits_of(model, path).max(0) for path in images))
        max_logit = torch.cat([m.flatten() for m in max_logit]).double().numpy()
        pred = torch.cat([p.flatten() for p in pred]).numpy()
        np.testing.assert_array_equal(stats.count, np.bincount(pred, minlength=19))
        mean, std = stats.mean_std()
        for c in range(19):
            values = max_logit[pred == c]
            if len(values) < 2:  # no statistics of its own: the pooled ones
                values = max_logit
            assert mean[c] == pytest.approx(values.mean(), abs=1e-5), c
            assert std[c] == pytest.approx(values.std(), abs=1e-5), c


def test_float16_cache_moves_no_metric_by_more_than_1e_4(run, prepared_world):
    """Pixel metrics of the entropy and the FP / FN segment counts, from the pipeline's float16 cache and from the
    float32 softmax of the model itself. (The segments themselves can change: see
    test_meta_classification.py::test_segments_of_the_float16_cache_equal_those_of_the_float32_softmax.)"""
    rows = run.second[0]["rows"]
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static")
    for epoch, checkpoint, row in ((0, run.baseline, ROWS[0]), (1, run.checkpoint, ROWS[1])):
        run_folder = run.io_root / "LostAndFound" / (TRAINED if epoch else f"{MODEL}_baseline")
        model = load_model(checkpoint)
        reference, cached, labels, results = [], [], [], []
        for i in range(len(dataset)):
            probs = torch.softmax(logits_of(model, dataset.images[i]), 0).numpy()
            target = dataset[i][1].numpy().astype(np.uint8)
            reference.append(normalized_entropy_reference(probs))
            cached.append(normalized_entropy_reference(read_cache(cache_path(run_folder / "cache", i))["probs"]))
            labels.append(target)
            results.append(segment_search(probs, target, dataset.label_ids(i), 0.7, 2))
        labels = np.concatenate([label.ravel() for label in labels])
        valid = np.isin(labels, (1, 2))
        is_ood = labels[valid] == 2
        reference = np.concatenate([e.ravel() for e in reference])[valid]
        cached = np.concatenate([e.ravel() for e in cached])[valid]
        exact_reference, exact_cached = sklearn_metrics(reference, is_ood), sklearn_metrics(cached, is_ood)
        streamed = PixelMetrics()
        streamed.update(reference.astype(np.float32), is_ood)
        streamed = streamed.compute()
        pipeline = rows[row]["protocols"]["exact"]["pixel"]["entropy"]
        for key in ("auroc", "ap", "fpr95"):
            assert exact_cached[key] == pytest.approx(exact_reference[key], abs=1e-4), (row, key)
            assert pipeline[key] == pytest.approx(streamed[key], abs=1e-4), (row, key)
        fp, fn = count_segment_errors(results)
        assert rows[row]["segments"] == {"fp": fp, "fn": fn}


def read_markdown_tables(path):
    """results.md as lists of rows (lists of cell strings), one list per table, header rows dropped."""
    tables, rows = [], None
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            rows = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if rows is None:
            rows = []
            tables.append(rows)
        elif not set("".join(cells)) <= set("-"):
            rows.append(cells)
    return tables


def assert_cell(cell, value, scale=100):
    """A table cell shows `value` (None: not a number) as `scale * value` with 2 decimals."""
    if value is None:
        assert cell == "–"
    else:
        assert float(cell) == pytest.approx(scale * value, abs=0.005 + 1e-9)


def reject(constant):
    raise ValueError(f"results.json holds {constant}, which is not JSON")


def test_results_json_holds_every_number_of_the_table_and_parses_back(run):
    report = json.loads((run.results / "results.json").read_text(), parse_constant=reject)
    assert report["schema"] == 2
    rows = report["rows"]
    assert list(rows) == ROWS == list(run.second[0]["rows"])
    assert rows[ROWS[0]]["checkpoint"] == str(run.baseline)
    assert rows[ROWS[1]]["checkpoint"] == rows[ROWS[2]]["checkpoint"] == str(run.checkpoint)
    assert report["config"]["evalset"]["VALSET"] == "LostAndFound" and report["config"]["evalset"]["val_epoch"] == 1
    assert report["config"]["paths"]["io_root"] == str(run.io_root)
    assert report["num_images"] == 3 and report["num_unlabelled"] == 0

    main_table, score_table = read_markdown_tables(run.results / "results.md")
    assert [cells[0] for cells in main_table] == ROWS
    for name, *cells in main_table:
        row, exact = rows[name], rows[name]["protocols"]["exact"]
        pixel = exact["pixel"]["entropy+meta" if name == ROWS[2] else "entropy"]
        for cell, key in zip(cells[:3], ("auroc", "ap", "fpr95")):
            assert_cell(cell, pixel[key])
        assert [int(cells[3]), int(cells[4])] == [row["segments"]["fp"], row["segments"]["fn"]]
        for cell, key in zip(cells[5:], ("siou_gt", "ppv", "mean_f1")):
            assert_cell(cell, exact["component"][key])
    shown = {(name, score) for name, score, *_ in score_table}
    assert shown == {(name, score) for name, row in rows.items() for score in row["protocols"]["exact"]["pixel"]}
    assert {("baseline", "sml"), (ROWS[1], "sml"), (ROWS[2], "entropy+meta")} <= shown
    for name, score, *cells in score_table:
        for cell, key in zip(cells, ("auroc", "ap", "fpr95")):
            assert_cell(cell, rows[name]["protocols"]["exact"]["pixel"][score][key])


def is_png(path):
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
    with Image.open(path) as image:
        image.verify()
        return image.format == "PNG" and min(image.size) >= 100


def test_curves_and_overlays_are_png_images(run, prepared_world):
    assert is_png(run.results / "roc.png") and is_png(run.results / "pr.png")
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static")
    overlays = sorted(p.name for p in (run.results / "overlays").iterdir())
    # --num_visualizations 2: the two frames frames_to_show (tested in test_plots.py) picks from the segments
    segments_dir = run.io_root / "LostAndFound" / TRAINED / "segments_t0.7"
    results = [load_segments(segments_dir / f"{name}.npz") for name in NAMES]
    with np.load(segments_dir / "meta_classifier.npz") as saved:
        removed = [saved["removed"][saved["image"] == i] for i in range(len(NAMES))]
    chosen = frames_to_show([r["metrics"]["S"] for r in results], [r["metrics"]["iou0"] for r in results], removed, 2)
    assert overlays == sorted(f"{i:05d}_{dataset.frame_name(i)}.png" for i in chosen) and len(overlays) == 2
    assert all(is_png(run.results / "overlays" / name) for name in overlays)
    assert not list(run.results.rglob(".*")), "a temporary file was left behind"


def test_visualize_frames_draws_the_named_frames_and_refuses_unknown_names(run, prepared_world, tmp_path):
    names = [build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static").frame_name(i)
             for i in range(3)]
    common = ["--init_ckpt", str(run.baseline), "-epoch", "1"]
    with pytest.raises(UserError, match=f"^no frame named nowhere_7 in LostAndFound, --visualize_frames; name frames "
                                        f"such as {names[0]}, {names[1]}, {names[2]}$"):
        run_stage3(prepared_world, run.io_root, *common, "--visualize_frames", f"{names[0]},nowhere_7")
    # the results belong to the module's fixture: move its overlays aside and put them back afterwards
    overlays_dir = run.results / "overlays"
    shutil.move(overlays_dir, tmp_path / "overlays")
    try:
        run_stage3(prepared_world, run.io_root, *common, "--visualize_frames", f"{names[2]}, {names[0]}")
        assert sorted(p.name for p in overlays_dir.iterdir()) == [f"00000_{names[0]}.png", f"00002_{names[2]}.png"]
    finally:
        shutil.rmtree(overlays_dir, ignore_errors=True)
        shutil.move(tmp_path / "overlays", overlays_dir)


def test_a_missing_baseline_cache_gives_the_no_baseline_row_line(run):
    report, printed = run.first
    line = next(line for line in printed.splitlines() if line.startswith("No baseline row"))
    assert "make it with python meta_classification.py -prepare -segment " in line
    hint = hinted_settings(line)
    assert hint.meta.metaseg_prepare and hint.meta.segment_search and hint.evalset.VALSET == "LostAndFound"
    assert hint.evalset.val_epoch == 0 and hint.model.init_ckpt == str(run.baseline)
    assert list(report["rows"]) == ROWS[1:]


def test_missing_inputs_stop_evaluation_naming_the_command_that_makes_them(tiny_checkpoints, prepared_world, tmp_path_factory, tmp_path):
    """Each message names a command; running that command lets evaluation go one step further."""
    _, trained = tiny_checkpoints
    common = ["-epoch", "0", "--init_ckpt", str(trained)]
    expected = [("has 0 of 3 images (first missing: 00000.h5). Make it with: ", "-prepare"),
                ("3 of 3 segment results are missing", "-segment"),
                ("meta_classifier.npz is missing; train the meta classifier with: ", "-removal")]
    for text, stage in expected:
        with pytest.raises(UserError) as error:
            run_stage3(prepared_world, tmp_path, *common, "--num_visualizations", "0")
        message = str(error.value)
        assert text in message
        command = shlex.split(message[message.index("python meta_classification.py"):])
        assert command[:3] == ["python", "meta_classification.py", stage]
        run_stage2(prepared_world, tmp_path, *command[2:])
    report, _ = run_stage3(prepared_world, tmp_path, *common, "--num_visualizations", "0")
    assert list(report["rows"]) == ["baseline", "+ meta classifier"]


def test_protocol_all_reports_the_three_protocols_side_by_side(run, prepared_world):
    """--protocol all: results.json keeps the exact protocol's numbers of the earlier run, adds meta-ood and smiyc
    beside it with the numbers the protocols give on the cached entropy, and results.md lists each row per
    protocol."""
    report, printed = run_stage3(prepared_world, run.io_root, "--init_ckpt", str(run.baseline), "-epoch", "1",
                                 "--num_visualizations", "0", "--protocol", "all")
    assert report["protocol"] == "all" and report["protocols"] == ["exact", "meta-ood", "smiyc"]
    trained = report["rows"][ROWS[1]]
    exact = run.second[0]["rows"][ROWS[1]]["protocols"]["exact"]
    assert trained["protocols"]["exact"]["pixel"]["entropy"]["ap"] == exact["pixel"]["entropy"]["ap"]
    assert trained["protocols"]["exact"]["component"]["mean_f1"] == exact["component"]["mean_f1"]
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "test")
    caches = [read_cache(cache_path(run.io_root / "LostAndFound" / TRAINED / "cache", i)) for i in range(len(dataset))]
    frames = [(c["entropy"], binary_labels(c["gt_train"], dataset.train_id_in, dataset.train_id_out)) for c in caches]
    for name in ("meta-ood", "smiyc"):
        # smiyc reads our scores as --export_smiyc stores them, in float16
        expected = evaluate_frames(build_protocol(name, 50, 10, np.float16 if name == "smiyc" else None), lambda: frames)
        got = trained["protocols"][name]
        assert got["pixel"]["entropy"]["ap"] == expected["ap"] and got["pixel"]["entropy"]["auroc"] == expected["auroc"]
        assert ("component" in got) == (name == "smiyc")
    # energy: -logsumexp of the logits, cached by -prepare, a score of every protocol but meta-ood ([0, 1] only)
    logits = logits_of(load_model(run.checkpoint), dataset.images[0]).numpy().astype(np.float64)
    np.testing.assert_allclose(caches[0]["logsumexp"], np.log(np.exp(logits).sum(0)), rtol=1e-4, atol=1e-4)
    assert "energy" in trained["protocols"]["exact"]["pixel"] and "energy" in trained["protocols"]["smiyc"]["pixel"]
    assert "energy" not in trained["protocols"]["meta-ood"]["pixel"]
    text = (run.results / "results.md").read_text()
    assert "(protocols: exact, meta-ood, smiyc)" in text.splitlines()[0]
    main_table = read_markdown_tables(run.results / "results.md")[0]
    assert [(cells[0], cells[1]) for cells in main_table] == [(row, p) for row in ROWS for p in report["protocols"]]
