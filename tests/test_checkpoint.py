"""load_checkpoint: the accepted layouts round-trip, and every broken file gives the promised CheckpointError."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from src.model import CheckpointError, build_model, load_checkpoint

TINY = "DeepLabV3+_TinyResNet"


def fresh_model(seed):
    torch.manual_seed(seed)
    return build_model(TINY)


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def trained():
    """A tiny model whose BatchNorm buffers are not the defaults either."""
    model = fresh_model(0)
    with torch.no_grad():
        model.train()(torch.randn(2, 3, 32, 32))
    return model


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("wrapped", [False, True])
def test_round_trip(tmp_path, trained, prefix, wrapped):
    state = {prefix + k: v for k, v in trained.state_dict().items()}
    saved = {"epoch": 3, "state_dict": state, "loss": 0.5} if wrapped else state
    path = tmp_path / "weights.pth"
    torch.save(saved, path)
    model = fresh_model(1)
    checkpoint = load_checkpoint(model, str(path))
    assert_same_weights(model, trained)
    if wrapped:
        assert checkpoint["epoch"] == 3 and checkpoint["loss"] == 0.5
        assert set(checkpoint["state_dict"]) == set(state)
    else:
        assert set(checkpoint) == set(state)


def test_the_published_module_prefix_of_a_data_parallel_model_is_stripped(tmp_path, trained):
    path = tmp_path / "dp.pth"
    torch.save({"state_dict": torch.nn.DataParallel(trained).state_dict()}, path)
    model = fresh_model(1)
    load_checkpoint(model, str(path))
    assert_same_weights(model, trained)


def test_files_from_before_num_batches_tracked_load(tmp_path, trained):
    state = {k: v for k, v in trained.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state}, tmp_path / "old.pth")
    model = fresh_model(1)
    load_checkpoint(model, str(tmp_path / "old.pth"))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def load_error(model, path):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, str(path))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "a failed load must leave the model alone"
    return str(info.value)


def test_a_missing_key_is_named_with_its_shape(tmp_path, trained):
    state = trained.state_dict()
    del state["layer2.conv1.weight"]
    path = tmp_path / "missing.pth"
    torch.save({"state_dict": state}, path)
    message = load_error(fresh_model(1), path)
    assert str(path) in message
    assert "1 missing, 0 unexpected and 0 mis-shaped keys" in message
    assert "missing (model shape): layer2.conv1.weight (64, 32, 3, 3)" in message


def test_a_wrong_shape_is_named_with_both_shapes(tmp_path, trained):
    state = trained.state_dict()
    state["classifier.weight"] = torch.zeros(7, 64, 1, 1)  # a model of 7 classes
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    message = load_error(fresh_model(1), path)
    assert str(path) in message
    assert "0 missing, 0 unexpected and 1 mis-shaped keys" in message
    assert "classifier.weight (7, 64, 1, 1) vs (19, 64, 1, 1)" in message


def test_unexpected_keys_are_counted_and_the_first_few_shown(tmp_path, trained):
    state = trained.state_dict()
    state.update({f"extra.{i}.weight": torch.zeros(i + 1) for i in range(7)})
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    message = load_error(fresh_model(1), path)
    assert "0 missing, 7 unexpected and 0 mis-shaped keys" in message
    assert "extra.0.weight (1,), extra.1.weight (2,)" in message and "extra.4.weight (5,), ..." in message
    assert "extra.5.weight" not in message


def test_weights_of_another_architecture_are_refused(tmp_path):
    wrn_like = {"module.mod1.conv1.weight": torch.zeros(64, 3, 3, 3)}
    torch.save({"state_dict": wrn_like}, tmp_path / "other.pth")
    model = fresh_model(1)
    message = load_error(model, tmp_path / "other.pth")
    # num_batches_tracked is not required (BatchNorm fills it in), every other entry is
    required = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    assert f"{len(required)} missing, 1 unexpected and 0 mis-shaped keys" in message
    assert "unexpected (file shape): mod1.conv1.weight (64, 3, 3, 3)" in message


def assert_one_line_error(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(fresh_model(0), str(path))
    message = str(info.value)
    assert "\n" not in message
    error = info.value  # no pickle traceback behind it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    for fragment in fragments:
        assert fragment in message
    return message


def test_a_missing_file_is_named(tmp_path):
    assert_one_line_error(tmp_path / "nowhere.pth", str(tmp_path / "nowhere.pth"), "does not exist")


def test_a_truncated_file_gives_one_line(tmp_path, trained):
    path = tmp_path / "truncated.pth"
    torch.save({"state_dict": trained.state_dict()}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_one_line_error(path, str(path), "not a readable PyTorch checkpoint")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\nbut a text file\n"])
def test_a_text_file_gives_one_line(tmp_path, content):
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    assert_one_line_error(path, str(path), "not a readable PyTorch checkpoint")


def test_a_file_without_a_state_dict(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "meta.pth")
    assert_one_line_error(tmp_path / "meta.pth", "holds no state dict")


def test_a_file_weights_only_refuses_says_how_to_convert_it(tmp_path, trained):
    path = tmp_path / "numpy.pth"
    # NVIDIA-style checkpoints carry numpy scalars such as the best mean IoU
    torch.save({"state_dict": trained.state_dict(), "mean_iu": np.float64(0.8)}, path)
    message = assert_one_line_error(path, str(path), "weights_only=True", "numpy")
    # the command in the message really converts the file
    command = re.search(r'python -c "(.*)"', message).group(1)
    subprocess.run([sys.executable, "-c", command], cwd=tmp_path, check=True)
    model = fresh_model(1)
    load_checkpoint(model, str(tmp_path / "converted.pth"))
    assert_same_weights(model, trained)
