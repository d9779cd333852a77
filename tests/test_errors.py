"""The error boundary: which errors become one line for the user, and which stay bugs with their traceback."""
import errno
import sys

import pytest

from src.checks import check_output_dir
from src.errors import UserError, run_script, user_message
from src.model.checkpoint import CheckpointError


@pytest.mark.parametrize("error, expected", [
    (UserError("x.png is broken; replace it"), "x.png is broken; replace it"),
    (CheckpointError("a.pth does not fit Net: 1 missing\n  missing (model shape): w (3,)"),
     "a.pth does not fit Net: 1 missing; missing (model shape): w (3,)"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/x.png"), "/data/x.png does not exist"),
    (FileNotFoundError("LostAndFound: directory /d does not exist; download it"),
     "LostAndFound: directory /d does not exist; download it"),
    (OSError(errno.ENOSPC, "No space left on device", "/io/c/00001.h5"), "no space left to write /io/c/00001.h5"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/io/weights"), "a part of /io/weights is a file"),
    (UserError("Caught UserError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
               '  File "x.py", line 1, in f\nsrc.errors.UserError: y.png cannot be decoded (truncated); replace it\n'),
     "y.png cannot be decoded (truncated); replace it"),
], ids=["user error", "checkpoint error", "missing file", "own message", "full disk", "file as folder",
        "from a data-loader worker"])
def test_user_errors_become_one_line(error, expected):
    message = user_message(error)
    assert message.startswith(expected) and "\n" not in message


@pytest.mark.parametrize("error", [ValueError("bug"), KeyError("k"), RuntimeError("bug"),
                                   OSError(errno.EIO, "Input/output error")])
def test_bugs_keep_their_traceback(error, monkeypatch):
    assert user_message(error) is None
    monkeypatch.setattr(sys, "argv", ["evaluation.py"])

    def main():
        raise error

    with pytest.raises(type(error)):
        run_script(main)


def test_the_boundary_prints_one_line_and_exits_1_or_130(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/repo/evaluation.py", "-pixel"])

    def mistake():
        raise UserError("results.json is damaged; delete it")

    with pytest.raises(SystemExit) as exit_info:
        run_script(mistake)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "evaluation.py: results.json is damaged; delete it\n"

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        run_script(interrupted, interrupted=lambda: "continue with -epoch 3")
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip() == "evaluation.py: interrupted; continue with -epoch 3"
    assert run_script(lambda value: value + 1, 41) == 42


def test_an_output_dir_below_a_file_is_refused_and_a_missing_one_accepted(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"^--io_root .*file/io lies under .*file, which is a file"):
        check_output_dir(tmp_path / "file" / "io", "--io_root")
    with pytest.raises(UserError, match=r"^--export_smiyc .*file is a file, not a directory"):
        check_output_dir(tmp_path / "file", "--export_smiyc")
    check_output_dir(tmp_path / "new" / "io", "--io_root")
    assert not (tmp_path / "new").exists(), "a check writes nothing"
