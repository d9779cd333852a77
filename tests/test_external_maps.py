"""Any method's score maps (--scores_from): segment metrics of a score map against a slow reference, the exact
score quantile, missing and mis-shaped frames, and the whole path on the tiny demo world (segment search,
meta classifier, evaluation rows, export, and the softmax's MetaSeg metrics when the cache exists)."""
import json
import shutil
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import average_precision_score, roc_auc_score

import config
from src.cache import read_cache
from src.dataset import build_valset
from src.errors import UserError
from src.evaluation.score_maps import read_score_map, score_map_path, write_score_map
from src.external_maps import ExternalMaps, filtered_score, frame_train_ids, score_quantile
from src.metaseg.metrics import compute_metrics_components
from src.metaseg.score_segments import score_segment_metrics, segment_targets
from src.metaseg.segment_search import load_segments
from tests.test_meta_classification import MODEL, run_stage2, run_stage3

TRAINED = f"{MODEL}_entropy_epoch_1_alpha_0.9"


# ---- segment metrics of a score map against a slow, straightforward reference


def reference_segments(score, void, threshold):
    """Segments as lists of (row, col) pixels, numbered in the order a row-major scan meets them (BFS, pure
    Python), with the threshold compared in float64."""
    h, w = score.shape
    inside = [[float(score[i, j]) >= threshold and not void[i, j] for j in range(w)] for i in range(h)]
    seen = [[False] * w for _ in range(h)]
    segments = []
    for i in range(h):
        for j in range(w):
            if not inside[i][j] or seen[i][j]:
                continue
            seen[i][j] = True
            queue, pixels = deque([(i, j)]), []
            while queue:
                x, y = queue.popleft()
                pixels.append((x, y))
                for xx in range(max(x - 1, 0), min(x + 2, h)):
                    for yy in range(max(y - 1, 0), min(y + 2, w)):
                        if inside[xx][yy] and not seen[xx][yy]:
                            seen[xx][yy] = True
                            queue.append((xx, yy))
            segments.append(pixels)
    return segments, inside


def reference_metrics(score, void, threshold, gt_ood):
    """Every score-map metric and target of every segment, one segment at a time from the definitions."""
    segments, inside = reference_segments(score, void, threshold)
    h, w = score.shape
    out = []
    for k, pixels in enumerate(segments):
        members = set(pixels)

        def is_boundary(x, y):
            return any((xx, yy) not in members for xx in range(max(x - 1, 0), min(x + 2, h))
                       for yy in range(max(y - 1, 0), min(y + 2, w)))

        part = {"": pixels, "_in": [p for p in pixels if not is_boundary(*p)],
                "_bd": [p for p in pixels if is_boundary(*p)]}
        m = {}
        for suffix, px in part.items():
            values = [float(score[p]) for p in px]
            mean = sum(values) / len(values) if values else 0.0
            m["score" + suffix] = mean
            m["score_var" + suffix] = sum((v - mean) ** 2 for v in values) / len(values) if values else 0.0
            m["score_max" + suffix] = max(values) if values else 0.0
        s, s_in, s_bd = len(pixels), len(part["_in"]), len(part["_bd"])
        s_rel = s / s_bd if s_bd else 0.0
        s_rel_in = s_in / s_bd if s_bd else 0.0
        rows = [p[0] for p in pixels]
        cols = [p[1] for p in pixels]
        m.update(S=s, S_in=s_in, S_bd=s_bd, S_rel=s_rel, S_rel_in=s_rel_in,
                 score_rel=m["score"] * s_rel, score_rel_in=m["score_in"] * s_rel_in,
                 score_var_rel=m["score_var"] * s_rel, score_var_rel_in=m["score_var_in"] * s_rel_in,
                 mean_x=sum(rows) / s, mean_y=sum(cols) / s,
                 bbox_h=max(rows) - min(rows) + 1, bbox_w=max(cols) - min(cols) + 1)
        m["fill"] = s / (m["bbox_h"] * m["bbox_w"])
        intersection = sum(bool(gt_ood[p]) for p in pixels)
        m["iou0"] = int(intersection == 0)
        # adjusted IoU: the union adds the ground-truth regions outside every segment that touch this one
        rest = [[bool(gt_ood[x, y]) and not inside[x][y] for y in range(w)] for x in range(h)]
        rest_regions, _ = reference_segments(np.array(rest, dtype=np.float32), np.zeros((h, w), bool), 0.5)
        near = {(xx, yy) for x, y in pixels for xx in range(max(x - 1, 0), min(x + 2, h))
                for yy in range(max(y - 1, 0), min(y + 2, w))}
        union = s + sum(len(r) for r in rest_regions if near & set(r))
        m["iou"] = intersection / union
        out.append(m)
    return segments, out


@pytest.mark.parametrize("seed", range(6))
def test_score_map_segment_metrics_equal_a_slow_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 16, size=2)
    # smooth-ish maps with plateaus, so segments have interiors, ties and a range beyond [0, 1]
    score = (np.round(rng.normal(0, 2, (h, w)) * 4) / 4).astype(np.float32)
    void = rng.random((h, w)) < 0.1
    gt_ood = rng.random((h, w)) < 0.3
    threshold = [0.1, 0.25, -0.3, 1.0, 0.5, 0.0][seed]
    metrics, components = score_segment_metrics(score, void, threshold)
    metrics.update(segment_targets(components, gt_ood))
    segments, expected = reference_metrics(score, void, threshold, gt_ood)

    assert components.max(initial=0) <= len(segments) and np.abs(components).max(initial=0) == len(segments)
    for k, pixels in enumerate(segments):
        ids = np.abs(components[tuple(np.array(pixels).T)])
        assert (ids == k + 1).all()
    assert (np.abs(components) > 0).sum() == sum(len(p) for p in segments)
    for name in expected[0] if expected else []:
        got = np.asarray(metrics[name], dtype=np.float64)
        want = np.array([m[name] for m in expected], dtype=np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=name)
    assert set(metrics) == set(expected[0]) if expected else True


def test_a_threshold_that_is_no_float32_value_is_compared_exactly():
    score = np.array([[np.float32(0.1), np.nextafter(np.float32(0.1), np.float32(0))]], dtype=np.float32)
    # float32(0.1) is above the real 0.1, so it is selected; its lower neighbour is below 0.1
    assert float(score[0, 0]) > 0.1 > float(score[0, 1])
    _, components = score_segment_metrics(score, np.zeros_like(score, dtype=bool), 0.1)
    assert components.tolist() == [[-1, 0]]


def test_segments_ids_parts_and_targets_equal_metaseg_on_the_same_mask():
    rng = np.random.default_rng(7)
    score = rng.random((30, 40)).astype(np.float32)
    gt_train = rng.choice([0, 1, 2, 255], size=(30, 40), p=[0.2, 0.5, 0.2, 0.1]).astype(np.uint8)
    probs = softmax(rng.normal(0, 3, (19, 30, 40)), axis=0).astype(np.float32)
    metrics, components = score_segment_metrics(score, gt_train == 255, 0.55)
    metrics.update(segment_targets(components, gt_train == 2))
    metaseg, metaseg_components = compute_metrics_components(probs, gt_train, score >= 0.55, 2)
    np.testing.assert_array_equal(components, metaseg_components)
    for name in ("S", "S_in", "S_bd", "S_rel", "S_rel_in", "mean_x", "mean_y", "iou", "iou0"):
        np.testing.assert_allclose(metrics[name], metaseg[name], rtol=1e-12, err_msg=name)


# ---- the score quantile


class ListMaps:
    def __init__(self, scores, voids):
        self.scores, self.voids = scores, voids

    def __len__(self):
        return len(self.scores)

    def score(self, i):
        return self.scores[i]

    def void(self, i):
        return self.voids[i]


@pytest.mark.parametrize("q", [1e-6, 0.05, 0.5, 0.9, 0.95, 0.999, 1.0])
def test_score_quantile_equals_numpy_inverted_cdf_over_the_non_void_pixels(q):
    rng = np.random.default_rng(3)
    shapes = [(7, 9), (5, 4), (11, 3)]
    scores = [np.concatenate([rng.normal(0, 50, s[0] * s[1] - 3), [0.0, -0.0, 1e-30]]).reshape(s).astype(np.float32)
              for s in shapes]
    scores[1][:] = np.float16(rng.random(shapes[1]))  # ties, as in float16 submission maps
    voids = [rng.random(s) < 0.2 for s in shapes]
    pixels = np.concatenate([s[~v] for s, v in zip(scores, voids)])
    assert score_quantile(ListMaps(scores, voids), q) == float(np.quantile(pixels, q, method="inverted_cdf"))


# ---- the tiny demo world


def hand_made_maps(dataset, out_dir):
    """One score map per frame: 0.9 + a little on every ground-truth OoD object, 0.8 on two false 3x3 blobs far
    from it (in non-void pixels), 0.1 elsewhere. Returns the number of false blobs written."""
    rng = np.random.default_rng(0)
    false_blobs = 0
    for i in range(len(dataset)):
        gt = frame_train_ids(dataset, i)
        score = np.full(gt.shape, 0.1, dtype=np.float32)
        score[gt == dataset.train_id_out] = 0.9 + 0.05 * rng.random(int((gt == dataset.train_id_out).sum()))
        free = (gt == dataset.train_id_in)
        placed = 0
        for x, y in zip(*np.nonzero(free)):
            window = (slice(max(x - 2, 0), x + 5), slice(max(y - 2, 0), y + 5))
            if x + 3 > gt.shape[0] or y + 3 > gt.shape[1] or not free[x:x + 3, y:y + 3].all() or \
                    (score[window] > 0.5).any() or (gt[window] == dataset.train_id_out).any():
                continue
            score[x:x + 3, y:y + 3] = 0.8
            placed += 1
            if placed == 2:
                break
        false_blobs += placed
        write_score_map(score_map_path(out_dir, dataset.frame_name(i)), score)
    return false_blobs


@pytest.fixture(scope="module")
def external(tiny_checkpoints, prepared_world, tmp_path_factory):
    """Hand-made maps of the tiny LostAndFound set through -segment -removal (loo, score-map metrics alone), then
    the evaluation with --export_smiyc; and the trained checkpoint's cache and exported entropy maps."""
    baseline, trained = tiny_checkpoints
    io_root = tmp_path_factory.mktemp("external_io")
    (io_root / "weights" / "entropy").mkdir(parents=True)
    shutil.copy2(trained, io_root / "weights" / "entropy" / trained.name)
    dataset = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "Static")
    maps_dir = io_root / "maps"
    false_blobs = hand_made_maps(dataset, maps_dir)
    common = ["--scores_from", str(maps_dir), "--score_threshold", "0.5", "--init_ckpt", str(baseline), "-epoch", "1"]
    run_stage2(prepared_world, io_root, *common, "-segment", "-removal", "--meta_cv", "loo", "--meta_classifier", "paper")
    export = io_root / "filtered"
    report, printed = run_stage3(prepared_world, io_root, *common, "--export_smiyc", str(export), "-pixel",
                                 "-segment")
    return SimpleNamespace(io_root=io_root, dataset=dataset, maps=maps_dir, false_blobs=false_blobs, common=common,
                           report=report, printed=printed, export=export, baseline=baseline,
                           segments=Path(config.layout_of(["--io_root", str(io_root), *common]).external_segments_dir()))


def test_segment_search_finds_the_hand_made_objects_and_false_blobs(external):
    summary = json.loads((external.segments / "meta_classifier.json").read_text())
    record = json.loads((external.segments / "segments.json").read_text())
    assert record["families"] == summary["families"] == ["score_map"]  # no cache of the checkpoint yet
    assert summary["num_false_positives"] == external.false_blobs > 0
    assert "E" not in summary["features"] and "score_max" in summary["features"]
    rows = external.report["rows"]
    assert rows["external"]["segments"]["fp"] == external.false_blobs
    assert rows["external"]["segments"]["fn"] == 0  # every object scores 0.9 or more
    data = np.load(external.segments / "meta_classifier.npz")
    kept_fp = int(((data["iou0"] == 1) & ~data["removed"]).sum())
    assert rows["+ meta classifier"]["segments"]["fp"] == kept_fp


def test_evaluation_rows_equal_a_direct_computation_from_the_maps(external):
    ds = external.dataset
    data = np.load(external.segments / "meta_classifier.npz")
    before, after, labels = [], [], []
    lowest = min(read_score_map(score_map_path(external.maps, ds.frame_name(i))).min() for i in range(len(ds)))
    threshold = json.loads((external.segments / "segments.json").read_text())["threshold"]
    moved_from, moved_to = [], []
    for i in range(len(ds)):
        score = read_score_map(score_map_path(external.maps, ds.frame_name(i)))
        gt = frame_train_ids(ds, i)
        components = load_segments(external.segments / f"{i:05d}.npz")["components"]
        removed_ids = np.flatnonzero(data["removed"][data["image"] == i]) + 1
        removed = np.isin(np.abs(components), removed_ids)
        filtered = read_score_map(score_map_path(external.export, ds.frame_name(i)))
        np.testing.assert_array_equal(filtered[~removed], score[~removed])
        moved_from.append(score[removed])
        moved_to.append(filtered[removed])
        valid = (gt == ds.train_id_in) | (gt == ds.train_id_out)
        before.append(score[valid])
        after.append(filtered[valid])
        labels.append(gt[valid] == ds.train_id_out)
    # removed pixels fall below the threshold, above the middle of [lowest, threshold), in their order
    moved_from, moved_to = np.concatenate(moved_from), np.concatenate(moved_to)
    assert moved_from.size and moved_from.min() >= threshold and moved_to.max() < threshold
    assert moved_to.min() >= (lowest + threshold) / 2 - 1e-6
    order = np.argsort(moved_from, kind="stable")
    assert np.all(np.diff(moved_to[order]) >= 0)
    labels = np.concatenate(labels)
    for row, scores in (("external", before), ("+ meta classifier", after)):
        exact = external.report["rows"][row]["protocols"]["exact"]
        got = exact["pixel"]["score"]
        assert got["auroc"] == pytest.approx(roc_auc_score(labels, np.concatenate(scores)), abs=1e-9)
        assert got["ap"] == pytest.approx(average_precision_score(labels, np.concatenate(scores)), abs=1e-9)
        assert 0 <= exact["component"]["mean_f1"] <= 1
    results_dir = Path(config.layout_of(["--io_root", str(external.io_root), *external.common]).external_results_dir())
    results = json.loads((results_dir / "results.json").read_text())
    assert results["schema"] == 2 and results["families"] == ["score_map"] and "+ meta classifier" in results["rows"]
    assert "| external |" in external.printed and "| + meta classifier |" in external.printed


def test_the_softmax_family_is_added_when_the_checkpoint_cache_exists(external, prepared_world, tmp_path):
    io_root = external.io_root
    run_stage2(prepared_world, io_root, "--init_ckpt", str(external.baseline), "-epoch", "1", "-prepare")
    run_stage2(prepared_world, io_root, *external.common, "-segment", "-removal", "--meta_cv", "loo", "--meta_classifier", "paper")
    summary = json.loads((external.segments / "meta_classifier.json").read_text())
    assert summary["families"] == ["score_map", "softmax"]
    assert {"E", "D_var_in", "cprob3", "ndist18", "score_max_bd", "fill"} <= set(summary["features"])
    # the softmax metrics are MetaSeg's of the same segments
    cache = read_cache(io_root / "LostAndFound" / TRAINED / "cache" / "00000.h5", ("probs", "gt_train"))
    components = load_segments(external.segments / "00000.npz")
    expected, _ = compute_metrics_components(cache["probs"], cache["gt_train"], components["components"] != 0, 2)
    for name in ("E", "V_var_bd", "cprob0", "ndist5"):
        np.testing.assert_allclose(components["metrics"][name], expected[name], err_msg=name)
    # --metric_families score_map leaves them out again
    run_stage2(prepared_world, io_root, *external.common, "-segment", "-removal", "--meta_cv", "loo", "--meta_classifier", "paper",
               "--metric_families", "score_map")
    assert json.loads((external.segments / "meta_classifier.json").read_text())["families"] == ["score_map"]


def test_exported_entropy_maps_evaluate_to_the_numbers_of_the_run_that_exported_them(external, prepared_world):
    io_root = external.io_root
    common = ["--init_ckpt", str(external.baseline), "-epoch", "1"]
    run_stage2(prepared_world, io_root, *common, "-prepare", "-segment", "-removal")
    exported = io_root / "entropy_maps"
    run_stage3(prepared_world, io_root, *common, "--export_smiyc", str(exported))
    own, _ = run_stage3(prepared_world, io_root, *common, "-pixel")
    theirs, _ = run_stage3(prepared_world, io_root, "--scores_from", str(exported), "-pixel")
    a = own["rows"]["entropy training (epoch 1)"]["protocols"]["exact"]["pixel"]["entropy"]
    b = theirs["rows"]["external"]["protocols"]["exact"]["pixel"]["score"]
    for name in ("auroc", "ap", "fpr95"):  # the maps are the entropy rounded to float16
        assert a[name] == pytest.approx(b[name], abs=2e-3), name
    assert (a["num_ood"], a["num_in"]) == (b["num_ood"], b["num_in"])


def test_missing_and_mis_shaped_frames_are_named_in_one_line(external, tmp_path):
    ds = external.dataset
    broken = tmp_path / "broken"
    shutil.copytree(external.maps, broken)
    (broken / f"{ds.frame_name(0)}.hdf5").unlink()
    with pytest.raises(UserError) as missing:
        ExternalMaps(str(broken), ds)
    assert ds.frame_name(0) in str(missing.value) and "\n" not in str(missing.value)
    shutil.copy2(external.maps / f"{ds.frame_name(0)}.hdf5", broken)
    write_score_map(score_map_path(broken, ds.frame_name(1)), np.zeros((5, 5)))
    write_score_map(score_map_path(broken, ds.frame_name(2)), np.zeros((3, 5)))
    with pytest.raises(UserError) as shaped:
        ExternalMaps(str(broken), ds)
    message = str(shaped.value)
    assert ds.frame_name(1) in message and ds.frame_name(2) in message and "(5, 5)" in message
    assert "\n" not in message


def test_filtered_external_score_keeps_the_ranking_below_the_threshold_for_any_score_range():
    rng = np.random.default_rng(3)
    for low, threshold, high in ((0.0, 0.5, 1.0), (-7.5, 2.0, 40.0), (100.0, 100.5, 1e6)):
        score = rng.uniform(low, high, (30, 40)).astype(np.float32)
        score[0, :3] = [low, threshold, high]
        removed = (score >= threshold) & (rng.random((30, 40)) < 0.5)
        removed[0, 1:3] = True
        out = filtered_score(score, removed, low, threshold)
        assert out.dtype == np.float32 and np.array_equal(out[~removed], score[~removed])
        assert out[removed].max() < np.float32(threshold)
        assert out[removed].min() >= (low + threshold) / 2 - 1e-6 * max(1.0, abs(threshold))
        order = np.argsort(score[removed], kind="stable")
        assert np.all(np.diff(out[removed][order]) >= 0)
        assert filtered_score(score, np.zeros_like(removed), low, threshold).tobytes() == score.tobytes()


def test_filtered_external_score_of_a_map_with_minus_infinity_sets_removed_pixels_to_it():
    score = np.array([[-np.inf, 0.2, 0.9]], dtype=np.float32)
    out = filtered_score(score, np.array([[False, False, True]]), -np.inf, 0.5)
    assert out[0, 2] == -np.inf and out[0, 1] == np.float32(0.2)
