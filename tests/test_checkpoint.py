"""tinyhydra.checkpoint: nested trees of arrays and values survive a round trip."""
import numpy as np
import pytest

from tinyhydra import checkpoint


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
