"""Plain and decayed prefix sums along the sequence axis (tinyhydra.attention.scan), against the
recurrence run one position at a time, and the reversed sum as their adjoint."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyhydra.attention.scan import DIRECT, MATMUL_CHUNK, METHODS, prefix_sum, reverse_prefix_sum
from tinyhydra.engine import backend


def loop_prefix_sum(x, decay):
    """The recurrence y_i = a y_{i-1} + x_i, one position at a time."""
    y, state = np.zeros_like(x), np.zeros(x.shape[:-2] + x.shape[-1:], dtype=x.dtype)
    for i in range(x.shape[-2]):
        state = decay * state + x[..., i, :]
        y[..., i, :] = state
    return y


# lengths around the chunk edges of both forms: one chunk, several, a padded last chunk,
# three levels
LENGTHS = [1, 2, DIRECT, DIRECT + 1, MATMUL_CHUNK, MATMUL_CHUNK + 1, 3 * DIRECT + 5, 1200, 40_000]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("length", LENGTHS)
def test_is_the_recurrence(length, method, rng):
    x = rng.standard_normal((2, length, 4))
    decay = np.array([0.0, 0.3, 0.97, 1.0])
    np.testing.assert_allclose(prefix_sum(x, decay, method), loop_prefix_sum(x, decay), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(prefix_sum(x, None, method), np.cumsum(x, axis=-2), rtol=1e-10, atol=1e-9)
    assert prefix_sum(x, None, method).shape == x.shape


def test_numpy_runs_the_loop_and_a_gpu_the_matrix_form(rng):
    """The default on NumPy is the loop, bit for bit (a run resumed with today's code is the
    run that never stopped); an unknown method is a one-line error."""
    x = rng.standard_normal((2, 300, 4)).astype(np.float32)
    decay = np.array([0.0, 0.3, 0.97, 1.0], dtype=np.float32)
    assert np.array_equal(prefix_sum(x, decay), prefix_sum(x, decay, "loop"))
    assert not np.array_equal(prefix_sum(x, decay, "matmul"), prefix_sum(x, decay, "loop"))  # other rounding
    with pytest.raises(ValueError, match="method must be one of"):
        prefix_sum(x, decay, "scan")


@pytest.mark.parametrize("shape", [(2, 8, 64), (2, 32, 64), (2, 512, 64), (3, 1200, 5)])
def test_a_small_plain_sum_in_one_cumsum_is_the_loop_bit_for_bit(shape, rng, monkeypatch):
    """Below CUMSUM_ELEMENTS_PER_STEP the loop form's plain sum is one cumsum call: the same
    additions in the same order, so the same bits, at every level of the two."""
    from tinyhydra.attention import scan

    x = rng.standard_normal(shape).astype(np.float32)
    monkeypatch.setattr(scan, "CUMSUM_ELEMENTS_PER_STEP", 0)  # the loop everywhere
    looped = prefix_sum(x)
    monkeypatch.setattr(scan, "CUMSUM_ELEMENTS_PER_STEP", 10**9)  # cumsum everywhere
    assert np.array_equal(prefix_sum(x), looped)


@settings(deadline=None, max_examples=25)
@given(length=st.integers(1, 300), decays=st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0, 1),
                                                     min_size=3, max_size=3),
       method=st.sampled_from(METHODS))
def test_reverse_is_the_adjoint(length, decays, method):
    """<P x, y> = <x, P^T y>: the backward of a decayed prefix sum is the reversed one."""
    rng = np.random.default_rng(length)
    x, y = rng.standard_normal((2, 2, length, 3))
    decay = np.array(decays)
    lhs = np.sum(prefix_sum(x, decay, method) * y)
    rhs = np.sum(x * reverse_prefix_sum(y, decay, method))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))
    np.testing.assert_allclose(reverse_prefix_sum(y, decay, method),
                               loop_prefix_sum(y[..., ::-1, :], decay)[..., ::-1, :], atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_float32_keeps_its_dtype_and_small_decays_stay_finite(method, rng):
    x = rng.standard_normal((1, 8192, 3)).astype(np.float32)
    decay = np.array([1e-3, 0.5, 1.0], dtype=np.float32)
    y = prefix_sum(x, decay, method)
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_allclose(y, loop_prefix_sum(x.astype(np.float64), decay.astype(np.float64)),
                               rtol=1e-3, atol=1e-2)


def test_on_an_accelerator_the_matrix_form_matches_the_cpu(accelerator, rng):
    """On a GPU the default form is the matrix one; it equals NumPy's loop to float32 round-off."""
    x = rng.standard_normal((3, 200, 8)).astype(np.float32)
    decay = rng.uniform(0, 1, 8).astype(np.float32)
    on_gpu = backend.to_device(x, accelerator), backend.to_device(decay, accelerator)
    for fn in (prefix_sum, reverse_prefix_sum):
        np.testing.assert_allclose(backend.as_numpy(fn(*on_gpu)), fn(x, decay), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(backend.as_numpy(fn(on_gpu[0])), fn(x), rtol=1e-5, atol=1e-4)
