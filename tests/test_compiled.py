"""A checkout whose compiled modules are missing or older than their .pyx sources says so in one line."""
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from src import unbuilt_modules

ROOT = Path(__file__).resolve().parents[1]


def test_missing_and_stale_compiled_modules_are_named(tmp_path):
    package = tmp_path / "src"
    (package / "part").mkdir(parents=True)
    source = package / "part" / "kernel.pyx"
    source.write_text("")
    assert unbuilt_modules(str(package)) == [os.path.join("src", "part", "kernel.pyx")]
    built = package / "part" / f"kernel{EXTENSION_SUFFIXES[0]}"
    built.write_bytes(b"")
    os.utime(built, (source.stat().st_mtime + 10,) * 2)
    assert unbuilt_modules(str(package)) == []
    os.utime(source, (built.stat().st_mtime + 10,) * 2)  # the source changed after the build (a git pull)
    assert unbuilt_modules(str(package)) == [os.path.join("src", "part", "kernel.pyx")]


def test_this_checkout_is_built_and_a_stale_one_stops_in_one_line(tmp_path):
    assert unbuilt_modules() == []
    # a copy of src/ whose float_cells.pyx is newer than its compiled module: importing it stops with one line
    copy = tmp_path / "checkout"
    copy.mkdir()
    subprocess.run(["cp", "-a", str(ROOT / "src"), str(copy / "src")], check=True)
    pyx = copy / "src" / "evaluation" / "float_cells.pyx"
    os.utime(pyx, (pyx.stat().st_mtime + 1000,) * 2)
    done = subprocess.run([sys.executable, "-c", "import src"], cwd=copy, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "src/evaluation/float_cells.pyx: not compiled since last changed; run `make setup` first"
