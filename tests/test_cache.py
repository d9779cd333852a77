"""src/cache.py's compression: caches written with gzip by earlier versions still read, new ones use Blosc2; what
the scores read in small form, from the file or from the probs of a cache written before it was stored."""
import h5py
import numpy as np

from src.cache import FIELDS, TOP_FIELDS, is_current, read_cache, write_cache

BLOSC2_FILTER_ID = "32026"  # the HDF5 registered filter id of Blosc2


def test_a_gzip_cache_of_an_earlier_version_reads_as_before(tmp_path):
    rng = np.random.default_rng(1)
    arrays = {"probs": rng.random((19, 9, 14)).astype(np.float16), "entropy": rng.random((9, 14)).astype(np.float32),
              "max_logit": rng.normal(0, 5, (9, 14)).astype(np.float32),
              "gt_train": rng.integers(0, 256, (9, 14), dtype=np.uint8),
              "gt_label": rng.integers(0, 256, (9, 14), dtype=np.uint8)}
    path = tmp_path / "00000.h5"
    with h5py.File(path, "w") as f:  # the layout written before Blosc2, with h5py alone
        for key, array in arrays.items():
            f.create_dataset(key, data=array, compression="gzip", compression_opts=1, shuffle=True)
        f.attrs["checkpoint"] = "x.pth (12 bytes, modified 3)"
    cache = read_cache(path)
    for key in FIELDS:
        np.testing.assert_array_equal(cache[key], arrays[key], err_msg=key)
    assert cache["probs"].dtype == np.float32 and is_current(path, "x.pth (12 bytes, modified 3)")


def test_a_new_cache_is_written_with_blosc2(tmp_path):
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(19), (9, 14)).transpose(2, 0, 1).astype(np.float32)
    path = tmp_path / "00000.h5"
    write_cache(path, probs, probs.max(0), np.zeros((9, 14), np.uint8), np.zeros((9, 14), np.uint8), {"checkpoint": "x"})
    with h5py.File(path, "r") as f:
        assert all(BLOSC2_FILTER_ID in f[key]._filters for key in FIELDS)
    np.testing.assert_array_equal(read_cache(path)["probs"], probs.astype(np.float16).astype(np.float32))


def test_the_segment_search_reads_the_probs_as_stored(tmp_path):
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(19), (9, 14)).transpose(2, 0, 1).astype(np.float32)
    path = tmp_path / "00000.h5"
    labels = np.zeros((9, 14), np.uint8)
    write_cache(path, probs, probs.max(0), labels, labels, {"checkpoint": "x"})
    stored = read_cache(path, ("probs", "entropy"), float16_probs=True)
    assert stored["probs"].dtype == np.float16
    np.testing.assert_array_equal(stored["probs"], probs.astype(np.float16))
    np.testing.assert_array_equal(stored["entropy"], read_cache(path)["entropy"])


def test_max_prob_and_pred_of_a_cache_are_those_of_its_float16_probs(tmp_path):
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.full(19, 0.3), (9, 14)).transpose(2, 0, 1).astype(np.float32)
    probs[:, 0, :3] = 1 / 19  # ties: the first class
    path = tmp_path / "00000.h5"
    labels = np.zeros((9, 14), np.uint8)
    write_cache(path, probs, probs.max(0), labels, labels, {"checkpoint": "x"})  # no logsumexp: an optional field
    stored = read_cache(path, ("probs",), float16_probs=True)["probs"]
    for written_with_them in (True, False):
        with h5py.File(path, "a") as f:
            assert all(key in f for key in TOP_FIELDS) == written_with_them
            if written_with_them:  # as a cache written before they were stored
                for key in TOP_FIELDS:
                    del f[key]
        cache = read_cache(path, ("max_prob", "pred", "logsumexp"))
        assert "logsumexp" not in cache and cache["max_prob"].dtype == np.float16 and cache["pred"].dtype == np.uint8
        np.testing.assert_array_equal(cache["max_prob"], stored.max(0))
        np.testing.assert_array_equal(cache["pred"], stored.astype(np.float32).argmax(0))
        assert (cache["pred"][0, :3] == 0).all()
