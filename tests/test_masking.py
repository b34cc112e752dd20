"""The helpers every attention op shares (tinyhydra.attention.masking)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyhydra as th
from tinyhydra.attention.masking import (
    as_bool_mask,
    causal_mask,
    check_float,
    rowdot,
    swap_last,
    zero_masked_keys,
)

from .strategies import bool_masks


@settings(max_examples=20)
@given(mask=st.integers(1, 4).flatmap(lambda n: bool_masks((2, n))), data=st.data())
def test_zero_masked_keys_selects_even_nan_and_inf(mask, data):
    x = data.draw(hnp.arrays(np.float32, mask.shape + (3,),
                             elements=st.sampled_from([np.nan, np.inf, -np.inf, 1.5])))
    out = zero_masked_keys(x, mask)
    assert out.dtype == np.float32
    assert np.all(out[~mask] == 0)
    np.testing.assert_array_equal(out[mask], x[mask])
    assert zero_masked_keys(x, None) is x


def test_causal_mask_is_lower_triangular():
    mask = causal_mask(4)
    assert mask.dtype == np.bool_ and mask.shape == (4, 4)
    np.testing.assert_array_equal(mask, np.arange(4)[:, None] >= np.arange(4)[None, :])
    np.testing.assert_array_equal(causal_mask(3, like=th.Tensor(np.ones(2))), np.tril(np.ones((3, 3), bool)))


def test_rowdot_and_swap_last():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(rowdot(a, b), (a * b).sum(-1, keepdims=True), atol=1e-14)
    assert swap_last(a).shape == (2, 4, 3)


def test_as_bool_mask_accepts_lists_and_tensors_and_says_what_is_wrong():
    like = np.ones((2, 3))
    np.testing.assert_array_equal(as_bool_mask([True, False, True], "m", (2, 3), like, "f"),
                                  [True, False, True])
    tensor_mask = th.Tensor(np.array([[True], [False]]))
    assert as_bool_mask(tensor_mask, "m", (2, 3), like, "f").shape == (2, 1)
    with pytest.raises(ValueError, match=r"f: m of shape \(4,\) does not broadcast to \(2, 3\)"):
        as_bool_mask(np.ones(4, bool), "m", (2, 3), like, "f")
    with pytest.raises(ValueError, match="f: m must be a bool array"):
        as_bool_mask(np.ones(3), "m", (2, 3), like, "f")


def test_check_float_names_the_argument():
    check_float("q", np.ones(2))
    with pytest.raises(TypeError, match="q must be a floating-point Tensor or array, got int64"):
        check_float("q", np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match="got list"):
        check_float("q", [1.0])
