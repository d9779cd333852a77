"""bench/rehearsal.py stays runnable: every stage's command line parses, and a stage is measured honestly."""
import pytest

import evaluation
import meta_classification
import ood_training
from bench import rehearsal

PARSERS = {"ood_training.py": ood_training, "meta_classification.py": meta_classification,
           "evaluation.py": evaluation}


@pytest.mark.parametrize("size", ["full", "tiny"])
def test_every_stage_command_parses(size, tmp_path):
    stages = rehearsal.stages(str(tmp_path / "d"), str(tmp_path / "io"), str(tmp_path / "log"), size, 2)
    assert len({stage.name for stage in stages}) == len(stages)
    for stage in stages:
        script = stage.argv[0]
        assert (rehearsal.ROOT / script).is_file(), script
        if script in PARSERS:
            PARSERS[script].get_args_parser().parse_args(stage.argv[1:])  # an unknown flag exits here


def test_a_stage_is_measured_in_its_own_process(tmp_path):
    out = tmp_path / "io"
    out.mkdir()
    # 300 MiB held at once, and 3 MiB written
    code = (f"import numpy as np; a = np.ones(300 * 2**20, np.uint8); open({str(out / 'x.bin')!r}, 'wb')"
            ".write(bytes(3 * 2**20))")
    row = rehearsal.run_stage(rehearsal.Stage("allocate", ["-c", code], 3, (30, "thirty")), tmp_path / "log",
                              (str(out),), timeout=60)
    assert row["status"] == "ok" and row["images"] == 3
    assert 300 / 1024 < row["peak_gib"] < 1.0
    assert row["mib_per_image"] == pytest.approx(1.0)
    assert row["real_gib"] == pytest.approx(30 / 1024)
    assert row["real_hours"] == pytest.approx(row["s_per_image"] * 30 / 3600)
    failed = rehearsal.run_stage(rehearsal.Stage("fails", ["-c", "raise SystemExit(3)"], 1), tmp_path / "log",
                                 (str(out),), timeout=60)
    assert failed["status"].startswith("failed (exit 3") and failed["real_hours"] is None
