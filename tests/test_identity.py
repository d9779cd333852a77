"""Checkpoints are identified by their content, with the hash remembered beside them while the file is unchanged."""
import hashlib
import json
import os
import shutil

from src.identity import checkpoint_identity, files_identity, sidecar_path


def test_identity_is_the_hash_of_the_content_not_the_path(tmp_path):
    checkpoint = tmp_path / "a" / "model.pth"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights" * 1000)
    expected = "sha256:" + hashlib.sha256(b"weights" * 1000).hexdigest()
    assert checkpoint_identity(str(checkpoint)) == expected
    moved = tmp_path / "b" / "renamed.pth"
    moved.parent.mkdir()
    shutil.copy(checkpoint, moved)
    assert checkpoint_identity(str(moved)) == expected
    moved.write_bytes(b"retrained" * 1000)
    assert checkpoint_identity(str(moved)) == "sha256:" + hashlib.sha256(b"retrained" * 1000).hexdigest()
    assert checkpoint_identity("") == "random initialisation"


def test_the_sidecar_is_trusted_only_while_size_and_time_match(tmp_path):
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"weights")
    real = checkpoint_identity(str(checkpoint))
    sidecar = sidecar_path(str(checkpoint))
    saved = json.loads(open(sidecar).read())
    # a remembered hash is used without reading the checkpoint again ...
    with open(sidecar, "w") as f:
        json.dump({**saved, "sha256": "remembered"}, f)
    assert checkpoint_identity(str(checkpoint)) == "sha256:remembered"
    # ... until the checkpoint changes (here only its time stamp), or the sidecar is damaged
    os.utime(checkpoint, ns=(saved["mtime_ns"] + 10**9, saved["mtime_ns"] + 10**9))
    assert checkpoint_identity(str(checkpoint)) == real
    with open(sidecar, "wb") as f:
        f.write(b"\x80\x02 not json")
    assert checkpoint_identity(str(checkpoint)) == real


def test_files_identity_follows_content_and_absence(tmp_path):
    label = tmp_path / "label.png"
    label.write_bytes(b"1")
    first = files_identity([str(label), str(tmp_path / "missing.png")])
    assert files_identity([str(label), str(tmp_path / "missing.png")]) == first
    label.write_bytes(b"2")
    assert files_identity([str(label), str(tmp_path / "missing.png")]) != first
