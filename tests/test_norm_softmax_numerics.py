"""float16 accuracy of layer norm and the softmax family, and ignored cross-entropy rows
that cannot leak a NaN or an inf into the loss or the gradients."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyhydra as th
from tinyhydra import functional as F


def layer_norm_float64(x):
    x = x.astype(np.float64)
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


@pytest.mark.parametrize("centre", [0.0, 300.0, 3000.0])
def test_float16_layer_norm_matches_float64(centre):
    rng = np.random.default_rng(0)
    x = (centre + 4 * rng.standard_normal((6, 32))).astype(np.float16)
    weight = th.tensor(rng.uniform(0.5, 1.5, 32).astype(np.float16), requires_grad=True)
    bias = th.tensor(rng.normal(size=32).astype(np.float16), requires_grad=True)
    leaf = th.tensor(x, requires_grad=True)
    y = F.layer_norm(leaf, weight, bias)
    expected = layer_norm_float64(x) * weight.data.astype(np.float64) + bias.data
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.data.astype(np.float64), expected, atol=1e-2)  # float16 rounding
    cotangent = rng.standard_normal((6, 32)).astype(np.float16)
    y.backward(cotangent)
    for grad in (leaf.grad, weight.grad, bias.grad):
        assert grad.dtype == np.float16 and np.isfinite(grad).all()
    wide = th.tensor(x.astype(np.float64), requires_grad=True)
    F.layer_norm(wide, th.tensor(weight.data.astype(np.float64)),
                 th.tensor(bias.data.astype(np.float64))).backward(cotangent.astype(np.float64))
    np.testing.assert_allclose(leaf.grad.astype(np.float64), wide.grad, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
def test_float16_softmax_family_matches_float64(op):
    rng = np.random.default_rng(1)
    x = (20 * rng.standard_normal((4, 3000))).astype(np.float16)  # a sum of 3000 terms
    leaf = th.tensor(x, requires_grad=True)
    y = op(leaf)
    expected = op(th.tensor(x.astype(np.float64))).data
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.data.astype(np.float64), expected, rtol=2e-3, atol=1e-6)
    y.backward(rng.standard_normal(x.shape).astype(np.float16))
    assert leaf.grad.dtype == np.float16 and np.isfinite(leaf.grad).all()


def test_float16_cross_entropy_matches_float64():
    rng = np.random.default_rng(2)
    logits = (5 * rng.standard_normal((64, 3000))).astype(np.float16)
    targets = rng.integers(0, 3000, 64)
    leaf = th.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(leaf, targets)
    wide = th.tensor(logits.astype(np.float64), requires_grad=True)
    expected = F.cross_entropy(wide, targets)
    assert loss.dtype == np.float16
    assert float(loss.data) == pytest.approx(float(expected.data), rel=1e-3)
    loss.backward()
    expected.backward()
    assert leaf.grad.dtype == np.float16
    np.testing.assert_allclose(leaf.grad.astype(np.float64), wide.grad, rtol=1e-3, atol=1e-7)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf in an ignored row
@given(st.integers(2, 6), st.integers(2, 5), st.data())
def test_poisoned_ignored_rows_never_reach_the_loss_or_the_gradients(rows, classes, data):
    """NaN or +-inf anywhere in a row whose target is ignore_index changes nothing."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    logits = rng.standard_normal((rows, classes))
    ignored = np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    targets = np.where(ignored, -1, rng.integers(0, classes, rows))
    poison = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    poisoned = logits.copy()
    spots = rng.random((rows, classes)) < 0.5
    spots[ignored, 0] = True
    poisoned[ignored[:, None] & spots] = poison

    def loss_and_grad(x):
        leaf = th.tensor(x, requires_grad=True)
        loss = F.cross_entropy(leaf, targets, ignore_index=-1)
        loss.backward()
        return float(loss.data), leaf.grad

    clean_loss, clean_grad = loss_and_grad(logits)
    loss, grad = loss_and_grad(poisoned)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == clean_loss
    np.testing.assert_array_equal(grad, clean_grad)
    assert (grad[ignored] == 0).all()
