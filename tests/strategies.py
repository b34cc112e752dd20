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
    shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=max_dims, max_side=max_side)
    shape_a, shape_b = draw(shapes).input_shapes
    return draw(float64_arrays(shape_a)), draw(float64_arrays(shape_b))


@st.composite
def attention_shapes(draw, max_batch=3, max_len=7, max_dim=8):
    """(B, L, D) small enough for quadratic references and gradcheck."""
    return (draw(st.integers(1, max_batch)), draw(st.integers(1, max_len)),
            draw(st.integers(1, max_dim)))


def bool_masks(shape):
    """Any bool array of ``shape``: all-False rows and all-False masks included."""
    return hnp.arrays(np.bool_, shape, elements=st.booleans())


@st.composite
def qkv_case(draw, max_batch=3, max_len=7, max_dim=8):
    """(q, k, v) float64 arrays (B, L, D) plus a (B, L) key mask (or None)."""
    batch, length, dim = draw(attention_shapes(max_batch, max_len, max_dim))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.3, 1.0, 3.0]))
    rng = np.random.default_rng(seed)
    q, k, v = (scale * rng.standard_normal((batch, length, dim)) for _ in range(3))
    key_mask = draw(st.none() | bool_masks((batch, length)))
    return q, k, v, key_mask


@st.composite
def heads_for(draw, dim):
    return draw(st.sampled_from([h for h in range(1, dim + 1) if dim % h == 0]))
