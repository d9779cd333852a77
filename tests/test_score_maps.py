import numpy as np, pytest
from src.errors import UserError
from src.evaluation.score_maps import read_score_map, score_map_files, score_map_path, write_score_map
def test_roundtrip_and_errors(tmp_path):
    s = np.random.default_rng(0).random((4, 6)).astype(np.float32)
    write_score_map(score_map_path(tmp_path, "a"), s)
    got = read_score_map(score_map_files(tmp_path, ["a"])[0], (4, 6))
    assert np.array_equal(got, s.astype(np.float16).astype(np.float32))
    with pytest.raises(UserError, match="missing: b"):
        score_map_files(tmp_path, ["a", "b"])
    with pytest.raises(UserError, match=r"shape \(4, 6\)"):
        read_score_map(score_map_path(tmp_path, "a"), (5, 6))
    (tmp_path / "c.hdf5").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a readable HDF5"):
        read_score_map(str(tmp_path / "c.hdf5"))
