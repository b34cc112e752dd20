"""Hypothesis strategies shared by the test modules (kept in one place, as minitorch does)."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

small_floats = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_infinity=False, width=64)


def float64_arrays(shape):
    """float64 arrays of ``shape`` with moderate values (central differences stay accurate)."""
    return hnp.arrays(np.float64, shape, elements=small_floats)


def shapes(min_dims=1, max_dims=3, min_side=1, max_side=5):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def arrays_of_shape(draw, min_dims=1, max_dims=3, max_side=5):
    return draw(float64_arrays(draw(shapes(min_dims, max_dims, 1, max_side))))


@st.composite
def broadcastable_pair(draw, max_dims=3, max_side=4):
    """Two float64 arrays whose shapes broadcast against each other."""
    shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=max_dims, max_side=max_side)).input_shapes
    return draw(float64_arrays(shape_a)), draw(float64_arrays(shape_b))


@st.composite
def attention_shapes(draw, max_batch=3, max_len=7, max_dim=8):
    """(B, L, D) for the attention tests."""
    return (draw(st.integers(1, max_batch)), draw(st.integers(1, max_len)), draw(st.integers(1, max_dim)))


@st.composite
def key_masks(draw, batch, length):
    """bool (B, L) key masks, True = real token; rows may be all False."""
    return draw(hnp.arrays(np.bool_, (batch, length)))
