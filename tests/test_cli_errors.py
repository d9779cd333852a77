"""Wrong inputs and faults end in one line naming the file or flag, lose nothing, and never run code (issue 15).

Most cases run a script's real `__main__` block (argv, the error boundary, the exit status) inside the test
process with runpy, so torch is imported once; the cases that need a process of their own (exit status of a
real process, Ctrl-C, a full disk, a crafted pickle) run as subprocesses. Everything runs on copies of the tiny
demo world, with the tiny model on the CPU.
"""
import hashlib
import json
import os
import pickle
import resource
import runpy
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import config
from src.dataset import build_valset
from src.errors import UserError
from src.evaluation.score_maps import score_map_path
from src.identity import sidecar_path
from src.oodmc.svm import load_svm
from tests.test_external_maps import hand_made_maps
from tests.test_meta_classification import MODEL

REPO = Path(__file__).resolve().parents[1]
STAGE = ["-model", MODEL, "--device", "cpu", "--num_workers", "0"]
TRAIN = [*STAGE, "-crop", "16", "--batch_size", "2", "-lr", "1e-3", "--ood_subsampling_factor", "0.5"]
OODMC = ["--moment_num", "2", "--max_batch_size_for_moment", "2", "--svm_points_num", "40", "--SVM_eval_subsize", "1"]
RUN = f"{MODEL}_baseline"


def run_cli(script, *argv):
    """Run `python <script> <argv>` in this process: its `__main__` block, argv and exit status as from a shell.
    Returns code, out, err and the last line of stderr."""
    out, err = [], []
    saved = sys.argv, sys.stdout, sys.stderr
    sys.argv = [str(REPO / script), *map(str, argv)]
    sys.stdout, sys.stderr = _Capture(out), _Capture(err)
    try:
        runpy.run_path(str(REPO / script), run_name="__main__")
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    finally:
        sys.argv, sys.stdout, sys.stderr = saved
    err_text = "".join(err)
    lines = [line for line in err_text.replace("\r", "\n").splitlines() if line.strip()]
    return SimpleNamespace(code=code, out="".join(out), err=err_text, last=lines[-1] if lines else "")


class _Capture:
    def __init__(self, parts):
        self.parts = parts

    def write(self, text):
        self.parts.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def run_process(script, *argv, **kwargs):
    """`python <script> <argv>` as a process of its own; returns code, out, err, last (as run_cli)."""
    done = subprocess.run([sys.executable, str(REPO / script), *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, **kwargs)
    lines = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
    return SimpleNamespace(code=done.returncode, out=done.stdout, err=done.stderr, last=lines[-1] if lines else "")


def assert_refused(result, script, *named):
    """Exit status 1, no traceback, and a last line `<script>: ...` naming each of `named`."""
    assert result.code == 1, (result.code, result.err[-2000:])
    assert "Traceback" not in result.out + result.err, result.err[-3000:]
    assert result.last.startswith(f"{script}: "), result.last
    for name in named:
        assert str(name) in result.last, (name, result.last)


def checksums(folder):
    """{relative path: sha256} of every file under `folder`."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def temporary_files(folder):
    return [path for path in Path(folder).rglob(".*") if ".tmp" in path.name]


def copy_valset(world, tmp_path, name="lost_and_found"):
    """A data root holding a copy of one evaluation set of the tiny world (which the test may break)."""
    root = tmp_path / "data"
    shutil.copytree(world / name, root / name)
    return root


def stage_args(data_root, io_root, checkpoint, *argv):
    """Flags of stages 2 and 3 evaluating `checkpoint` as epoch 0 on the LostAndFound-like set."""
    return ["--data_root", data_root, "--io_root", io_root, *STAGE, "-epoch", "0", "--init_ckpt", checkpoint, *argv]


class Payload:
    """Unpickling this creates `marker`: proof that reading a file ran code from it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_pickle(path, marker):
    # protocol 2, as torch.save writes: a checkpoint reader gets as far as the global it refuses
    Path(path).write_bytes(pickle.dumps(Payload(marker), protocol=2))


@pytest.fixture(scope="module")
def evaluated(prepared_world, tiny_checkpoints, tmp_path_factory):
    """An io root where the trained tiny checkpoint (as epoch 0) went through every stage: -prepare -segment
    -removal, OODMC -moment -SVM, and evaluation (full and -moment). Tests copy it before changing it."""
    io_root = tmp_path_factory.mktemp("evaluated_io")
    args = stage_args(prepared_world, io_root, tiny_checkpoints[1])
    for script, extra in (("meta_classification.py", []), ("meta_classification.py", ["-moment", "-SVM", *OODMC]),
                          ("evaluation.py", ["--num_visualizations", "0"]), ("evaluation.py", ["-moment"])):
        result = run_cli(script, *args, *extra)
        assert result.code == 0, result.err[-3000:]
    return io_root


# ---- stage 1: checked before any training


def test_training_refuses_an_io_root_that_is_a_file_before_it_trains(prepared_world, tmp_path):
    io_root = tmp_path / "io"
    io_root.write_text("not a directory")
    result = run_cli("ood_training.py", "--data_root", prepared_world, "--io_root", io_root, *TRAIN,
                     "-train", "Cityscapes", "--init_ckpt", "none", "-nepochs", "1")
    assert_refused(result, "ood_training.py", "--io_root", io_root)
    assert "epoch 1/1" not in result.err  # refused before the first batch
    assert io_root.read_text() == "not a directory"


def test_training_refuses_a_crop_larger_than_every_image(prepared_world, tmp_path):
    result = run_cli("ood_training.py", "--data_root", prepared_world, "--io_root", tmp_path, *TRAIN,
                     "-train", "Cityscapes", "--init_ckpt", "none", "-nepochs", "1", "-crop", "100000")
    assert_refused(result, "ood_training.py", "-crop 100000", "64 px")
    assert not (tmp_path / "weights").exists()


@pytest.mark.parametrize("kind", ["random bytes", "another model"])
def test_a_bad_checkpoint_is_named(prepared_world, tmp_path, kind):
    checkpoint = tmp_path / "baseline.pth"
    if kind == "random bytes":
        checkpoint.write_bytes(np.random.default_rng(0).bytes(5000))
    else:
        torch.save({"state_dict": torch.nn.Linear(3, 2).state_dict()}, checkpoint)
    result = run_cli("meta_classification.py", *stage_args(prepared_world, tmp_path / "io", checkpoint, "-prepare"))
    assert_refused(result, "meta_classification.py", checkpoint)
    assert not list((tmp_path / "io").rglob("*.h5"))


def test_resume_applies_the_learning_rate_of_the_flags_and_records_it(prepared_world, tiny_checkpoints, tmp_path):
    common = ["--data_root", prepared_world, "--io_root", tmp_path, *TRAIN, "--init_ckpt", tiny_checkpoints[0]]
    assert run_cli("ood_training.py", *common, "-nepochs", "1").code == 0
    result = run_cli("ood_training.py", *common, "-epoch", "1", "-nepochs", "2", "-lr", "0.01")
    assert result.code == 0, result.err[-2000:]
    assert "-lr 0.01 applied (the checkpoint's optimizer had 0.001)" in result.out
    state = torch.load(tmp_path / "weights" / "entropy" / f"{MODEL}_epoch_2_alpha_0.9.pth", weights_only=True)
    assert state["config"]["train"]["learning_rate"] == 0.01
    assert all(group["lr"] == 0.01 for group in state["optimizer_state_dict"]["param_groups"])


# ---- stage 2: inputs checked before the first forward pass


def _label(data_root, index=1):
    return sorted((data_root / "lost_and_found" / "gtCoarse" / "test").rglob("*_labelTrainIds.png"))[index]


def _image(data_root, index=1):
    return sorted((data_root / "lost_and_found" / "leftImg8bit" / "test").rglob("*.png"))[index]


def break_value(data_root):
    label = _label(data_root)
    values = np.array(Image.open(label))
    values[0, :3] = 77
    Image.fromarray(values).save(label)
    return label, "77"


def break_size(data_root):
    label = _label(data_root)
    Image.fromarray(np.array(Image.open(label))[:, :40]).save(label)
    return label, "40 x 32"


def break_missing_label(data_root):
    label = _label(data_root)
    label.unlink()
    return label, "prepare_lost_and_found.py"


@pytest.mark.parametrize("break_input", [break_value, break_size, break_missing_label],
                         ids=["label value outside the encoding", "label size", "missing label"])
def test_bad_labels_stop_prepare_before_the_first_forward_pass(prepared_world, tiny_checkpoints, tmp_path,
                                                               break_input):
    data_root = copy_valset(prepared_world, tmp_path)
    path, detail = break_input(data_root)
    result = run_cli("meta_classification.py", *stage_args(data_root, tmp_path / "io", tiny_checkpoints[1], "-prepare"))
    assert_refused(result, "meta_classification.py", path, detail)
    assert not list((tmp_path / "io").rglob("*.h5")), "no image may be cached before the labels are checked"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_truncated_image_is_named_and_the_images_before_it_stay_cached(prepared_world, tiny_checkpoints, tmp_path,
                                                                         workers):
    data_root = copy_valset(prepared_world, tmp_path)
    image = _image(data_root, 2)
    image.write_bytes(image.read_bytes()[:200])
    args = stage_args(data_root, tmp_path / "io", tiny_checkpoints[1], "-prepare", "--num_workers", workers)
    result = run_cli("meta_classification.py", *args)
    assert_refused(result, "meta_classification.py", image)
    assert len(list((tmp_path / "io").rglob("*.h5"))) == 2 and not temporary_files(tmp_path / "io")


def test_a_corrupt_webp_of_road_obstacle21_is_named(prepared_world, tiny_checkpoints, tmp_path):
    data_root = copy_valset(prepared_world, tmp_path, "dataset_ObstacleTrack")
    image = sorted((data_root / "dataset_ObstacleTrack" / "images").glob("*.webp"))[0]
    image.write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 garbage")
    args = stage_args(data_root, tmp_path / "io", tiny_checkpoints[1], "-prepare", "-val", "RoadObstacle21")
    assert_refused(run_cli("meta_classification.py", *args), "meta_classification.py", image)


def test_an_empty_data_root_names_the_folder_it_looked_in(tiny_checkpoints, tmp_path):
    (tmp_path / "data").mkdir()
    result = run_cli("meta_classification.py", *stage_args(tmp_path / "data", tmp_path / "io", tiny_checkpoints[1]))
    assert_refused(result, "meta_classification.py", tmp_path / "data" / "lost_and_found", "make_demo_world.py")


def test_an_oodmc_eval_subset_larger_than_the_set_is_refused_before_any_work(prepared_world, tiny_checkpoints,
                                                                            tmp_path):
    args = stage_args(prepared_world, tmp_path / "io", tiny_checkpoints[1], "-prepare", "-moment",
                      "--SVM_eval_subsize", "5")
    assert_refused(run_cli("meta_classification.py", *args), "meta_classification.py", "--SVM_eval_subsize", "only 3")
    assert not list((tmp_path / "io").rglob("*.h5"))


def test_removal_without_segments_and_evaluation_do_not_send_the_user_in_circles(evaluated, prepared_world,
                                                                                 tiny_checkpoints, tmp_path):
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    args = stage_args(prepared_world, io_root, tiny_checkpoints[1], "-threshold", "1.0")
    result = run_cli("meta_classification.py", *args)
    assert_refused(result, "meta_classification.py", "-threshold", "no OoD segments")
    result = run_cli("evaluation.py", *args, "--num_visualizations", "0")
    assert result.code == 0, result.err[-2000:]
    assert "No '+ meta classifier' row: no OoD segments were found at -threshold 1.0" in result.out


def test_leave_one_segment_out_names_the_flags_that_give_it(evaluated, prepared_world, tiny_checkpoints, tmp_path):
    # the default meta classifier (boosting) is cross-validated by image only; the published protocol is one
    # pair of flags away, and the refusal must name both rather than send the user from one error to the next
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    args = stage_args(prepared_world, io_root, tiny_checkpoints[1], "-removal", "--meta_cv", "loo")
    assert_refused(run_cli("meta_classification.py", *args), "meta_classification.py",
                   "--meta_classifier paper --meta_cv loo")
    result = run_cli("meta_classification.py", *args, "--meta_classifier", "paper")
    assert result.code == 0, result.err[-2000:]


# ---- stage 3: stages out of order, damaged inputs, where results go


def test_evaluation_before_prepare_names_the_command_that_makes_the_cache(prepared_world, tiny_checkpoints, tmp_path):
    result = run_cli("evaluation.py", *stage_args(prepared_world, tmp_path, tiny_checkpoints[1]))
    assert_refused(result, "evaluation.py", "Make it with: python meta_classification.py -prepare")


def test_a_truncated_cache_file_is_named_and_prepare_rebuilds_it(evaluated, prepared_world, tiny_checkpoints,
                                                                 tmp_path):
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    cache = io_root / "LostAndFound" / RUN / "cache" / "00001.h5"
    cache.write_bytes(cache.read_bytes()[:1000])
    args = stage_args(prepared_world, io_root, tiny_checkpoints[1], "--num_visualizations", "0")
    assert_refused(run_cli("evaluation.py", *args), "evaluation.py", cache, "-prepare")
    assert run_cli("meta_classification.py", *args[:-2], "-prepare").code == 0
    assert h5py.is_hdf5(cache)


def test_an_export_dir_that_is_a_file_is_refused(evaluated, prepared_world, tiny_checkpoints, tmp_path):
    target = tmp_path / "smiyc"
    target.write_text("a file")
    args = stage_args(prepared_world, evaluated, tiny_checkpoints[1], "--export_smiyc", target)
    assert_refused(run_cli("evaluation.py", *args), "evaluation.py", "--export_smiyc", target)


def test_partial_evaluations_merge_and_thresholds_get_their_own_folders(evaluated, prepared_world, tiny_checkpoints,
                                                                        tmp_path):
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    results = io_root / "results" / "LostAndFound" / RUN
    full = (results / "t0.7" / "results.json").read_text()
    args = stage_args(prepared_world, io_root, tiny_checkpoints[1], "--num_visualizations", "0")
    assert run_cli("evaluation.py", *args, "-pixel").code == 0
    before, after = json.loads(full)["rows"], json.loads((results / "t0.7" / "results.json").read_text())["rows"]
    assert list(after) == list(before) == ["baseline", "+ meta classifier"]
    for name, row in before.items():
        assert after[name]["segments"] == row["segments"], "-pixel dropped the segment columns"
        assert after[name]["protocols"] == row["protocols"]
    assert "| baseline |" in (results / "t0.7" / "results.md").read_text()
    kept = checksums(results / "t0.7")
    assert run_cli("evaluation.py", *args, "-pixel", "-threshold", "0.5").code == 0
    assert (results / "t0.5" / "results.json").is_file()
    assert checksums(results / "t0.7") == kept, "another -threshold overwrote the results of 0.7"
    assert (results / "oodmc.json").is_file(), "OODMC's report stays beside the threshold folders"


def test_changed_labels_are_noticed_and_re_cached(evaluated, prepared_world, tiny_checkpoints, tmp_path):
    data_root = copy_valset(prepared_world, tmp_path)
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    label = _label(data_root, 0)
    values = np.array(Image.open(label))
    values[values == 1] = 255  # a fixed label: some road becomes void
    Image.fromarray(values).save(label)
    args = stage_args(data_root, io_root, tiny_checkpoints[1], "--num_visualizations", "0")
    assert_refused(run_cli("evaluation.py", *args), "evaluation.py", "labels of 1 images changed", "-prepare")
    result = run_cli("meta_classification.py", *args[:-2])
    assert result.code == 0 and "-prepare: 2 of 3 images already cached" in result.out
    assert "searching again" in result.out
    assert run_cli("evaluation.py", *args).code == 0


def test_a_moved_io_root_keeps_its_caches(evaluated, prepared_world, tiny_checkpoints, tmp_path):
    moved = tmp_path / "elsewhere" / "io"
    shutil.copytree(evaluated, moved)
    sidecar = Path(sidecar_path(str(tiny_checkpoints[1])))
    assert sidecar.is_file(), "the checkpoint's hash is remembered beside it"
    result = run_cli("meta_classification.py", *stage_args(prepared_world, moved, tiny_checkpoints[1], "-prepare",
                                                           "-segment"))
    assert result.code == 0
    assert "-prepare: 3 of 3 images already cached" in result.out
    assert "3 of 3 frames already searched" in result.out


# ---- no file the project reads can run code


def _replace_with_pickle(io_root, pattern, marker):
    path = next(io_root.glob(pattern))
    crafted_pickle(path, marker)
    return path


READERS = [  # (file replaced by a pickle (a glob), the command that reads it, what its last line names)
    (f"LostAndFound/{RUN}/oodmc/svm.npz", "evaluation.py", ["-moment"], "svm.npz"),
    (f"LostAndFound/{RUN}/oodmc/scores/*.npy", "evaluation.py", ["-moment"], ".npy"),
    (f"LostAndFound/{RUN}/segments_t0.7/00000.npz", "meta_classification.py", ["-removal"], "00000.npz"),
    (f"LostAndFound/{RUN}/segments_t0.7/meta_classifier.npz", "evaluation.py", ["-segment"], "meta_classifier.npz"),
    (f"LostAndFound/{RUN}/segments_t0.7/segments.json", "meta_classification.py", ["-removal"], "segments.json"),
    (f"LostAndFound/{RUN}/cache/00000.h5", "evaluation.py", ["-pixel"], "00000.h5"),
    (f"results/LostAndFound/{RUN}/t0.7/results.json", "evaluation.py", ["-pixel"], "results.json"),
]


@pytest.mark.parametrize("relative, script, argv, named", READERS, ids=[r[0].split("/")[-1] for r in READERS])
def test_a_crafted_pickle_where_a_file_is_read_never_runs(evaluated, prepared_world, tiny_checkpoints, tmp_path,
                                                          relative, script, argv, named):
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    marker = tmp_path / "code_ran"
    _replace_with_pickle(io_root, relative, marker)
    if script == "evaluation.py":
        argv = [*argv, "--num_visualizations", "0"]
    result = run_cli(script, *stage_args(prepared_world, io_root, tiny_checkpoints[1], *argv))
    assert not marker.exists(), f"reading {relative} ran code"
    assert_refused(result, script, named)


def test_crafted_pickles_as_checkpoint_sidecar_and_sml_statistics_never_run(evaluated, prepared_world,
                                                                           tiny_checkpoints, tmp_path):
    checkpoint = tmp_path / "weights" / "baseline.pth"
    checkpoint.parent.mkdir()
    shutil.copy2(tiny_checkpoints[1], checkpoint)
    marker = tmp_path / "code_ran"
    crafted_pickle(sidecar_path(str(checkpoint)), marker)  # ignored: the checkpoint is hashed again
    crafted_pickle(str(checkpoint)[:-len(".pth")] + "_sml.json", marker)
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    result = run_cli("evaluation.py", *stage_args(prepared_world, io_root, checkpoint, "-pixel",
                                                  "--num_visualizations", "0"))
    assert not marker.exists()
    assert_refused(result, "evaluation.py", "baseline_sml.json")
    crafted_pickle(checkpoint, marker)
    result = run_cli("meta_classification.py", *stage_args(prepared_world, io_root, checkpoint, "-prepare"))
    assert not marker.exists()
    assert_refused(result, "meta_classification.py", checkpoint, "refuses (Unsupported global")


# ---- processes of their own: exit status, Ctrl-C, a full disk


def test_a_real_process_exits_with_status_1_and_one_line(evaluated, prepared_world, tiny_checkpoints, tmp_path):
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    marker = tmp_path / "code_ran"
    svm = _replace_with_pickle(io_root, f"LostAndFound/{RUN}/oodmc/svm.npz", marker)
    result = run_process("evaluation.py", *stage_args(prepared_world, io_root, tiny_checkpoints[1], "-moment"))
    assert not marker.exists()
    assert_refused(result, "evaluation.py", svm, "meta_classification.py -moment -SVM")
    with pytest.raises(UserError, match="not a readable npz file"):
        load_svm(svm)
    assert not marker.exists()


def test_ctrl_c_ends_with_status_130_and_says_how_to_continue(prepared_world, tiny_checkpoints, tmp_path):
    argv = ["--data_root", prepared_world, "--io_root", tmp_path / "io", *TRAIN, "--init_ckpt", tiny_checkpoints[0],
            "-nepochs", "1000"]
    process = subprocess.Popen([sys.executable, str(REPO / "ood_training.py"), *map(str, argv)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:  # wait until training has started and saved an epoch
        if line.startswith("epoch 1/1000"):
            break
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in out + err
    last = [line for line in err.replace("\r", "\n").splitlines() if line.strip()][-1]
    assert last.startswith("ood_training.py: interrupted;") and "-epoch" in last
    assert not temporary_files(tmp_path / "io")
    torch.load(tmp_path / "io" / "weights" / "entropy" / f"{MODEL}_epoch_1_alpha_0.9.pth", weights_only=True)


def _small_files_only():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_full_disk_ends_in_one_line_naming_the_file_and_leaves_no_partial_file(prepared_world, tiny_checkpoints,
                                                                                 tmp_path):
    io_root = tmp_path / "io"
    # one process (--num_workers 0): data-loader workers pass images through shared-memory files, which the
    # file size limit standing in for the full disk would hit first
    result = run_process("meta_classification.py", *stage_args(prepared_world, io_root, tiny_checkpoints[1],
                                                                "-prepare"), preexec_fn=_small_files_only)
    assert_refused(result, "meta_classification.py", "no space left to write", io_root / "LostAndFound" / RUN / "cache")
    assert not temporary_files(io_root) and not list(io_root.rglob("*.h5"))


# ---- any method's score maps, protocols, merged results and exports (issue 27)


def maps_args(data_root, io_root, maps, checkpoint, *argv):
    """Flags of stages 2 and 3 on the score maps of `maps`, segments at score >= 0.5."""
    return stage_args(data_root, io_root, checkpoint, "--scores_from", maps, "--score_threshold", "0.5", *argv)


def write_maps(data_root, folder, change=None):
    """hand_made_maps of the LostAndFound-like set of `data_root` into `folder`, each map first passed through
    change(index, score) when given (to break it)."""
    dataset = build_valset("LostAndFound", str(data_root / "lost_and_found"), "test")
    hand_made_maps(dataset, folder)
    if change is not None:
        for i in range(len(dataset)):
            path = score_map_path(folder, dataset.frame_name(i))
            with h5py.File(path, "r") as f:
                score = f["value"][()].astype(np.float32)
            score = change(i, score)
            path_tmp = Path(path)
            path_tmp.unlink()
            with h5py.File(path, "w") as f:  # any dtype the user may write
                f.create_dataset("value", data=score)
    return folder


@pytest.fixture(scope="module")
def searched_maps(prepared_world, tiny_checkpoints, tmp_path_factory):
    """(maps folder, io root): hand-made maps of the tiny LostAndFound set, searched and meta-classified at
    -threshold 0.5 and evaluated. The maps stay where they are (outputs are keyed by their path); tests copy
    the io root before changing it."""
    root = tmp_path_factory.mktemp("searched_maps")
    maps = write_maps(prepared_world, root / "maps")
    io_root = root / "io"
    args = maps_args(prepared_world, io_root, maps, tiny_checkpoints[1])
    for script, extra in (("meta_classification.py", ["-segment", "-removal", "--meta_cv", "loo", "--meta_classifier", "paper"]),
                          ("evaluation.py", [])):
        result = run_cli(script, *args, *extra)
        assert result.code == 0, result.err[-3000:]
    return maps, io_root


def test_an_export_into_the_maps_it_reads_is_refused_and_the_maps_stay(searched_maps, prepared_world,
                                                                        tiny_checkpoints, tmp_path):
    maps, evaluated_io = searched_maps
    io_root = tmp_path / "io"
    shutil.copytree(evaluated_io, io_root)
    kept = checksums(maps)
    link = tmp_path / "link"
    link.symlink_to(maps)
    for target in (maps, link, maps / "filtered"):
        result = run_cli("evaluation.py", *maps_args(prepared_world, io_root, maps, tiny_checkpoints[1],
                                                     "--export_smiyc", target))
        assert_refused(result, "evaluation.py", f"--export_smiyc {target}", "--scores_from", "outside")
    result = run_cli("meta_classification.py", *maps_args(prepared_world, maps / "io", maps, tiny_checkpoints[1],
                                                          "-segment"))
    assert_refused(result, "meta_classification.py", "--io_root", "--scores_from")
    assert checksums(maps) == kept


def test_two_map_folders_of_one_name_keep_their_own_outputs(searched_maps, prepared_world, tiny_checkpoints,
                                                            tmp_path):
    maps, evaluated_io = searched_maps
    io_root = tmp_path / "io"
    shutil.copytree(evaluated_io, io_root)
    kept = checksums(io_root)
    other = write_maps(prepared_world, tmp_path / "b" / "maps", lambda i, score: score * 0.9)
    args = maps_args(prepared_world, io_root, other, tiny_checkpoints[1])
    assert run_cli("meta_classification.py", *args, "-segment", "-removal", "--meta_cv", "loo", "--meta_classifier", "paper").code == 0
    assert run_cli("evaluation.py", *args).code == 0
    after = checksums(io_root)
    assert {path: after.get(path) for path in kept} == kept, "the maps of b/maps replaced those of a/maps"
    assert len(list(io_root.rglob("meta_classifier.npz"))) == 2 and len(list(io_root.rglob("results.json"))) == 2


def test_labels_changed_after_a_maps_search_are_noticed(searched_maps, prepared_world, tiny_checkpoints, tmp_path):
    maps, evaluated_io = searched_maps
    data_root = copy_valset(prepared_world, tmp_path)
    io_root = tmp_path / "io"
    shutil.copytree(evaluated_io, io_root)
    for label in sorted((data_root / "lost_and_found" / "gtCoarse").rglob("*_labelTrainIds.png")):
        values = np.array(Image.open(label))
        values[values == 2] = 1  # the objects relabelled as road: no OoD pixel is left
        Image.fromarray(values).save(label)
    args = maps_args(data_root, io_root, maps, tiny_checkpoints[1])
    assert_refused(run_cli("evaluation.py", *args, "-segment"), "evaluation.py", "labels changed", "-segment")
    assert run_cli("meta_classification.py", *args, "-segment").code == 0
    result = run_cli("evaluation.py", *args, "-segment")
    assert result.code == 0, result.err[-2000:]
    results = Path(config.layout_of(list(map(str, args))).external_results_dir()) / "results.json"
    searched = json.loads((evaluated_io / results.relative_to(io_root)).read_text())["rows"]["external"]["segments"]
    segments = json.loads(results.read_text())["rows"]["external"]["segments"]
    # no OoD pixel is left: no object can be missed, and every segment, object or blob, is a false positive
    assert segments == {"fp": searched["fp"] + 4, "fn": 0}, (searched, segments)
    # the neighbour: -pixel on a set without any OoD pixel is one line, before any metric
    result = run_cli("evaluation.py", *args, "-pixel")
    assert_refused(result, "evaluation.py", "-pixel", "0 OoD", str(data_root / "lost_and_found"))
    result = run_cli("evaluation.py", *stage_args(data_root, io_root, tiny_checkpoints[1], "-pixel"))
    assert_refused(result, "evaluation.py", "-pixel", "0 OoD", str(data_root / "lost_and_found"))


def test_an_image_replaced_after_prepare_is_noticed_and_cached_again(evaluated, prepared_world, tiny_checkpoints,
                                                                     tmp_path):
    data_root = copy_valset(prepared_world, tmp_path)
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    shutil.copy(_image(data_root, 1), _image(data_root, 0))  # another photo under the same name, labels unchanged
    args = stage_args(data_root, io_root, tiny_checkpoints[1], "--num_visualizations", "0")
    assert_refused(run_cli("evaluation.py", *args), "evaluation.py", "1 images changed", _image(data_root, 0),
                   "-prepare")
    result = run_cli("meta_classification.py", *args[:-2])
    assert result.code == 0, result.err[-2000:]
    assert "-prepare: 2 of 3 images already cached" in result.out and "searching again" in result.out
    assert run_cli("evaluation.py", *args).code == 0
    copied = tmp_path / "copied"  # a copied data root (new times, same content) keeps the caches
    shutil.copytree(data_root, copied)
    result = run_cli("meta_classification.py", *stage_args(copied, io_root, tiny_checkpoints[1], "-prepare"))
    assert "-prepare: 3 of 3 images already cached" in result.out


def test_results_of_thresholds_and_protocols_sit_side_by_side(searched_maps, prepared_world, tiny_checkpoints,
                                                              tmp_path):
    maps, evaluated_io = searched_maps
    io_root = tmp_path / "io"
    shutil.copytree(evaluated_io, io_root)
    args = maps_args(prepared_world, io_root, maps, tiny_checkpoints[1])
    results = Path(config.layout_of(list(map(str, args))).external_results_dir()) / "results.json"
    first = json.loads(results.read_text())["rows"]
    result = run_cli("evaluation.py", *args, "-pixel", "--protocol", "smiyc")
    assert result.code == 0, result.err[-2000:]
    rows = json.loads(results.read_text())["rows"]
    for name in ("external", "+ meta classifier"):
        assert rows[name]["protocols"]["exact"] == first[name]["protocols"]["exact"]
        assert rows[name]["segments"] == first[name]["segments"] and "smiyc" in rows[name]["protocols"]
    assert "| external | smiyc |" in result.out and "| external | exact |" in result.out
    kept = checksums(results.parent)
    assert run_cli("meta_classification.py", *args[:-1], "0.6", "-segment", "-removal", "--meta_cv", "loo", "--meta_classifier", "paper").code == 0
    assert run_cli("evaluation.py", *args[:-1], "0.6").code == 0
    assert checksums(results.parent) == kept, "--score_threshold 0.6 replaced the results of 0.5"
    # a damaged results file is named before any metric is computed
    results.write_text('{"rows": ')
    result = run_cli("evaluation.py", *args)
    assert_refused(result, "evaluation.py", results)
    assert "pixel metrics" not in result.err and "SMIYC" not in result.err
    # so is one of a newer meta-ood, which this one cannot read
    results.write_text('{"schema": 99, "rows": {}}')
    result = run_cli("evaluation.py", *args)
    assert_refused(result, "evaluation.py", results, "newer meta-ood", "schema 99")
    assert "pixel metrics" not in result.err


def test_a_checkpoint_row_keeps_the_protocols_of_earlier_runs(evaluated, prepared_world, tiny_checkpoints, tmp_path):
    io_root = tmp_path / "io"
    shutil.copytree(evaluated, io_root)
    args = stage_args(prepared_world, io_root, tiny_checkpoints[1], "--num_visualizations", "0")
    results = io_root / "results" / "LostAndFound" / RUN / "t0.7" / "results.json"
    exact = json.loads(results.read_text())["rows"]["baseline"]
    result = run_cli("evaluation.py", *args, "--protocol", "meta-ood")
    assert result.code == 0, result.err[-2000:]
    assert "meta-ood protocol: max_logit, energy of baseline left out of it" in result.out
    assert run_cli("evaluation.py", *args, "-pixel", "--protocol", "smiyc").code == 0
    row = json.loads(results.read_text())["rows"]["baseline"]
    assert set(row["protocols"]) == {"exact", "meta-ood", "smiyc"}, "the second protocol replaced the first"
    assert row["protocols"]["exact"] == exact["protocols"]["exact"] and row["segments"] == exact["segments"]


def _float16_overflow(i, score):
    return score * 1e5


def _nan(i, score):
    score[0, :2] = np.nan if i == 1 else score[0, :2]
    return score


def _plus_inf(i, score):
    score[0, 0] = np.inf if i == 2 else score[0, 0]
    return score


def _uint8(i, score):
    return np.round(score * 255).astype(np.uint8)


def _low(i, score):
    return score * 0.4


BAD_MAPS = [  # (how the maps are broken, the command, what its one line names; {i} is the name of frame i)
    (_float16_overflow, "evaluation.py", ["--export_smiyc", "EXPORT"],
     ["--export_smiyc", "reach 94970.7", "65504", "divide the maps by 10 "]),
    (_nan, "evaluation.py", ["-pixel"], ["NaN", "{1}.hdf5: 2 pixels"]),
    (_nan, "meta_classification.py", ["-segment"], ["NaN", "{1}.hdf5: 2 pixels"]),
    (_plus_inf, "meta_classification.py", ["-segment"], ["+inf", "{2}.hdf5", "write finite scores"]),
    (_uint8, "meta_classification.py", ["-segment"], ["--score_threshold 0.5", "integer", "uint8", "--score_quantile"]),
    (_low, "meta_classification.py", ["-segment"], ["--score_threshold 0.5", "above every score", "float32",
                                                    "--score_quantile"]),
]


@pytest.mark.parametrize("change, script, argv, named", BAD_MAPS,
                         ids=[c[0].__name__[1:] + " " + c[1] for c in BAD_MAPS])
def test_maps_the_scripts_cannot_use_are_named_before_any_work(prepared_world, tiny_checkpoints, tmp_path, change,
                                                               script, argv, named):
    maps = write_maps(prepared_world, tmp_path / "maps", change)
    io_root = tmp_path / "io"
    export = tmp_path / "export"
    if "--export_smiyc" in argv:  # an export needs the maps' segments and meta classifier
        args = maps_args(prepared_world, io_root, maps, tiny_checkpoints[1], "--score_quantile", "0.9")
        assert run_cli("meta_classification.py", *args, "-segment", "-removal").code == 0
        argv = ["--score_quantile", "0.9", "--export_smiyc", export]
    frames = build_valset("LostAndFound", str(prepared_world / "lost_and_found"), "test").frame_name
    result = run_cli(script, *maps_args(prepared_world, io_root, maps, tiny_checkpoints[1], *argv))
    assert_refused(result, script, *(name.format(*map(frames, range(3))) for name in named))
    assert not export.exists() or not list(export.iterdir())
    assert "segment search:" not in result.err and "|" not in result.out


def test_a_full_disk_during_an_export_leaves_no_file_and_no_crash(searched_maps, prepared_world, tiny_checkpoints,
                                                                  tmp_path):
    maps, evaluated_io = searched_maps
    io_root = tmp_path / "io"
    shutil.copytree(evaluated_io, io_root)
    export = tmp_path / "export"
    result = run_process("evaluation.py", *maps_args(prepared_world, io_root, maps, tiny_checkpoints[1],
                                                     "--export_smiyc", export), preexec_fn=_small_files_only)
    assert_refused(result, "evaluation.py", "no space left to write", export)
    assert not list(export.rglob("*.hdf5")) and not temporary_files(export)


def test_the_oodmc_eval_subset_is_checked_for_svm_alone(prepared_world, tiny_checkpoints, tmp_path):
    result = run_cli("meta_classification.py", *stage_args(prepared_world, tmp_path / "io", tiny_checkpoints[1],
                                                           "-SVM"))
    assert_refused(result, "meta_classification.py", "-SVM", "--SVM_eval_subsize", "only 3")


@pytest.mark.parametrize("script", ["meta_classification.py", "evaluation.py"])
def test_the_entropy_threshold_given_for_score_maps_is_refused_in_one_line(prepared_world, tiny_checkpoints, tmp_path,
                                                                           script):
    # one name per meaning: -threshold is the checkpoint's entropy threshold; maps take --score_threshold
    args = stage_args(prepared_world, tmp_path / "io", tiny_checkpoints[1], "--scores_from", tmp_path / "maps",
                      "-threshold", "0.5")
    assert_refused(run_cli(script, *args), script, "-threshold 0.5", "--score_threshold")
    assert not (tmp_path / "io").exists()
