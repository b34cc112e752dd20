"""tinyhydra.engine.checkpoint: nested trees of arrays and values survive a round trip."""
import numpy as np
import pytest

from tinyhydra.engine import checkpoint


def test_round_trip_keeps_structure_values_and_dtypes(tmp_path):
    tree = {
        "model": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3)},
        "optim": {"state": [{"step": 3, "m": np.ones(2)}, {}], "hyper": {"lr": 1e-3, "betas": [0.9, 0.98]}},
        "epoch": 7, "name": "sasrec", "nothing": None, "empty": [],
        "rng": {"state": {"state": 2**100 + 1, "inc": 12345}},
    }
    path = tmp_path / "ckpt.npz"
    checkpoint.save(tree, path)
    loaded = checkpoint.load(path)
    assert loaded["model"]["w"].dtype == np.float32
    np.testing.assert_array_equal(loaded["model"]["w"], tree["model"]["w"])
    assert loaded["optim"]["state"][0]["step"] == 3 and loaded["optim"]["state"][1] == {}
    np.testing.assert_array_equal(loaded["optim"]["state"][0]["m"], np.ones(2))
    assert loaded["optim"]["hyper"] == {"lr": 1e-3, "betas": [0.9, 0.98]}
    assert (loaded["epoch"], loaded["name"], loaded["nothing"], loaded["empty"]) == (7, "sasrec", None, [])
    assert loaded["rng"]["state"]["state"] == 2**100 + 1
    assert not list(tmp_path.glob("*.tmp*"))  # the temporary file was renamed away


def test_a_foreign_npz_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="not a checkpoint"):
        checkpoint.load(tmp_path / "other.npz")


def write_garbage(path):
    path.write_bytes(b"this is not a zip archive at all")


def write_truncated(path):
    checkpoint.save({"w": np.arange(10_000.0)}, path)
    path.write_bytes(path.read_bytes()[:5000])


def write_pickle(path):
    np.save(path.with_suffix(".npy"), np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path.with_suffix(".npy").rename(path)  # an object array: numpy would advise allow_pickle


def write_folder(path):
    path.mkdir()


@pytest.mark.parametrize("make", [write_garbage, write_truncated, write_pickle, write_folder, None])
def test_unreadable_files_raise_checkpoint_error_without_unsafe_advice(tmp_path, make):
    path = tmp_path / "checkpoint.npz"
    if make is not None:
        make(path)
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert str(path) in message and "pickle" not in message
    assert ("no such" in message) if make in (None, write_folder) else ("cannot be read" in message)


def test_version_is_checked_on_load(tmp_path):
    path = tmp_path / "ckpt.npz"
    checkpoint.save({"version": 2, "w": np.ones(2)}, path)
    assert checkpoint.load(path, versions=(2, 3))["version"] == 2
    with pytest.raises(checkpoint.CheckpointError, match="version 2; this tinyhydra reads version 3"):
        checkpoint.load(path, versions=(3,))
    checkpoint.save({"w": np.ones(2)}, path)
    with pytest.raises(checkpoint.CheckpointError, match="has no version number"):
        checkpoint.load(path, versions=(3,))
