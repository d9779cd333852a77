"""bench/gpu_check.py stays runnable: its CPU smoke mode runs every path's code on the tiny world, a machine
without CUDA gets one line and exit 0, and a failing path stops the check with its name and exit 1."""
import subprocess
import sys

import pytest
import torch

from bench import gpu_check


def test_smoke_mode_runs_every_path(prepared_world, tmp_path, capsys):
    status = gpu_check.main(["--smoke", "--data_root", str(prepared_world), "--io_root", str(tmp_path / "io")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    for path in ("training float32", "torchrun x1: GLOO all_reduce", "-prepare (2 writer processes)", "-segment",
                 "evaluation -pixel", "OODMC -moment -SVM, 2 samples", "OODMC evaluation -moment, 2 samples",
                 "OODMC 2 samples, prefix reused", "OODMC 4 samples, prefix reused", "OODMC 2 samples, full passes",
                 "small model inference float32"):
        assert f"\n{path} " in printed, path
    assert "gloo: sum over 1 ranks correct" in printed and "gpu-check passed" in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_one_line_and_exit_0():
    run = subprocess.run([sys.executable, "bench/gpu_check.py"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.count("\n") == 1 and "no CUDA device" in run.stdout


def test_the_first_failing_path_is_named_and_the_rest_skipped(capsys):
    ran = []

    def fails():
        raise SystemExit("-prepare: something broke")

    status = gpu_check.run_checks([("first", lambda: ran.append("first")), ("second", fails),
                                   ("third", lambda: ran.append("third"))], [{"path": "first"}])
    printed = capsys.readouterr().out
    assert status == 1 and ran == ["first"]
    assert printed.splitlines()[-1] == "gpu-check FAILED at second: SystemExit: -prepare: something broke"
