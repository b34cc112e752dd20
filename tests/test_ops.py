"""Every primitive and every non-attention F.* function: gradients and properties."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra.engine import backend, ops

from .strategies import arrays_of_shape, broadcastable_pair, float64_arrays, shapes


def leaf(array, device="cpu"):
    return th.Tensor(backend.to_device(np.asarray(array, dtype=np.float64), device), requires_grad=True)


# ---------------------------------------------------------------- elementwise
UNARY = {
    "neg": lambda x: -x,
    "exp": lambda x: x.exp(),
    "tanh": lambda x: x.tanh(),
    "log": lambda x: (x * x + 0.5).log(),
    "pow": lambda x: (x * x + 0.5) ** 1.5,
    "sqrt": lambda x: (x * x + 0.5).sqrt(),
    "relu": F.relu,
    "gelu": F.gelu,
    "sigmoid": F.sigmoid,
    "clamp_min": lambda x: ops.ClampMin.apply(x, lo=0.3),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=arrays_of_shape())
def test_unary_gradients(name, data):
    # keep relu/clamp away from their kink, where central differences are meaningless
    data = np.where(np.abs(data - 0.3) < 1e-3, data + 0.01, data)
    data = np.where(np.abs(data) < 1e-3, data + 0.01, data)
    assert th.gradcheck(UNARY[name], [leaf(data)])


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 0.5),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=broadcastable_pair())
def test_binary_gradients_with_broadcasting(name, pair):
    a, b = pair
    assert th.gradcheck(BINARY[name], [leaf(a), leaf(b)])


@given(st.data())
def test_matmul_gradients_batched_and_broadcast(data):
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    batch = data.draw(st.sampled_from([(), (2,), (3, 1)]))
    a = data.draw(float64_arrays(batch + (n, k)))
    b = data.draw(float64_arrays((k, m)))  # broadcast over a's batch: the one-GEMM path
    assert th.gradcheck(lambda x, y: x @ y, [leaf(a), leaf(b)])
    c = data.draw(float64_arrays(batch + (k, m)))
    assert th.gradcheck(lambda x, y: x @ y, [leaf(a), leaf(c)])


@given(data=arrays_of_shape(min_dims=2), keepdims=st.booleans())
def test_reductions_and_shape_ops(data, keepdims):
    x = leaf(data)
    assert th.gradcheck(lambda t: t.sum(axis=0, keepdims=keepdims), [x])
    assert th.gradcheck(lambda t: t.mean(axis=-1, keepdims=keepdims), [x])
    assert th.gradcheck(lambda t: t.mean(), [x])
    assert th.gradcheck(lambda t: t.reshape(-1), [x])
    assert th.gradcheck(lambda t: t.T, [x])
    assert th.gradcheck(lambda t: t.transpose(*reversed(range(t.ndim))), [x])


@given(data=arrays_of_shape(min_dims=2), seed=st.integers(0, 100))
def test_indexing_with_repeated_ids_accumulates(data, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, data.shape[0], size=5)  # repeats are likely
    assert th.gradcheck(lambda t: t[ids], [leaf(data)])
    aliases = rng.integers(-data.shape[0], data.shape[0], size=5)  # -n and 0 name one row
    assert th.gradcheck(lambda t: t[aliases], [leaf(data)])
    assert th.gradcheck(lambda t: t[np.array([-data.shape[0], 0])], [leaf(data)])
    assert th.gradcheck(lambda t: t[1:, ::2], [leaf(data)])
    assert th.gradcheck(lambda t: t[0], [leaf(data)])


def test_gelu_matches_the_tanh_formula():
    x = np.linspace(-5, 5, 101)
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(F.gelu(th.Tensor(x)).numpy(), expected, rtol=1e-12)


def test_masked_fill_blocks_gradient():
    x = leaf(np.arange(4.0))
    mask = np.array([True, False, True, False])
    y = F.masked_fill(x, mask, -1.0)
    np.testing.assert_allclose(y.numpy(), [-1, 1, -1, 3])
    assert th.gradcheck(lambda t: F.masked_fill(t, mask, 5.0), [x])


# ------------------------------------------------------------ softmax family
@given(data=arrays_of_shape(max_dims=3), axis=st.sampled_from([-1, 0]))
def test_softmax_and_log_softmax_gradients(data, axis):
    assert th.gradcheck(lambda t: F.softmax(t, axis=axis), [leaf(data)])
    assert th.gradcheck(lambda t: F.log_softmax(t, axis=axis), [leaf(data)])


@given(data=arrays_of_shape())
def test_softmax_rows_sum_to_one_and_match_composed_twin(data):
    x = leaf(data)
    y = F.softmax(x)
    np.testing.assert_allclose(y.numpy().sum(axis=-1), 1.0, rtol=1e-12)
    exps = x.exp()
    composed = exps / exps.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(y.numpy(), composed.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(F.log_softmax(x).numpy(), np.log(composed.numpy()), atol=1e-12)


def test_softmax_family_is_stable_for_large_logits():
    x = th.Tensor(np.array([[1000.0, 0.0, -1000.0], [-1e3, -1e3 + 1, -1e3]]), requires_grad=True)
    probs = F.softmax(x).numpy()
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs[0], [1, 0, 0])
    log_probs = F.log_softmax(x).numpy()
    np.testing.assert_allclose(log_probs[0], [0, -1000, -2000])
    loss = F.cross_entropy(x, np.array([2, 1]))
    expected = (2000 + (np.log(2 + math.e) - 1)) / 2
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)
    loss.backward()
    assert np.isfinite(x.grad).all()


def numpy_cross_entropy(logits, targets, ignore_index):
    """An independent reference: log-sum-exp per row, mean over kept rows."""
    kept = targets != ignore_index
    if not kept.any():
        return 0.0
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.flatnonzero(kept), targets[kept]].mean()


@given(st.data())
def test_cross_entropy_value_and_gradient(data):
    rows, classes = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 6))
    logits = data.draw(float64_arrays((rows, classes)))
    targets = np.array(data.draw(st.lists(st.integers(-1, classes - 1), min_size=rows, max_size=rows)))
    loss = F.cross_entropy(th.Tensor(logits), targets, ignore_index=-1)
    np.testing.assert_allclose(loss.item(), numpy_cross_entropy(logits, targets, -1), rtol=1e-10, atol=1e-12)
    assert th.gradcheck(lambda t: F.cross_entropy(t, targets, ignore_index=-1), [leaf(logits)])


def test_cross_entropy_accepts_leading_axes():
    logits = np.random.default_rng(0).standard_normal((2, 3, 5))
    targets = np.array([[0, 4, -100], [1, 1, 2]])
    flat = F.cross_entropy(th.Tensor(logits.reshape(6, 5)), targets.reshape(6)).item()
    assert F.cross_entropy(th.Tensor(logits), targets).item() == pytest.approx(flat, rel=1e-12)
    assert th.gradcheck(lambda t: F.cross_entropy(t, targets), [leaf(logits)])


@given(st.data())
def test_binary_cross_entropy_with_logits(data):
    shape = data.draw(shapes(max_dims=2))
    logits = data.draw(float64_arrays(shape)) * 4
    targets = data.draw(float64_arrays(shape)) > 0
    probs = 1 / (1 + np.exp(-logits))
    expected = -(targets * np.log(probs) + (1 - targets) * np.log(1 - probs)).mean()
    value = F.binary_cross_entropy_with_logits(th.Tensor(logits), targets).item()
    np.testing.assert_allclose(value, expected, rtol=1e-9)
    assert th.gradcheck(lambda t: F.binary_cross_entropy_with_logits(t, targets), [leaf(logits)])


def test_binary_cross_entropy_is_stable_for_large_logits():
    logits = th.Tensor(np.array([1e4, -1e4, 1e4]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, np.array([0.0, 1.0, 1.0]))
    np.testing.assert_allclose(loss.item(), 2e4 / 3)
    loss.backward()
    np.testing.assert_allclose(logits.grad, [1 / 3, -1 / 3, 0])


# ------------------------------------------------------------------ layernorm
@given(data=arrays_of_shape(min_dims=1, max_dims=3), seed=st.integers(0, 100))
def test_layer_norm_gradients(data, seed):
    if data.shape[-1] < 2:
        data = np.concatenate([data, data + 1.0], axis=-1)
    rng = np.random.default_rng(seed)
    weight = leaf(rng.standard_normal(data.shape[-1]))
    bias = leaf(rng.standard_normal(data.shape[-1]))
    inputs = [leaf(data + rng.standard_normal(data.shape)), weight, bias]
    assert th.gradcheck(lambda x, w, b: F.layer_norm(x, w, b), inputs)
    assert th.gradcheck(lambda x: F.layer_norm(x), [leaf(data + rng.standard_normal(data.shape))])


@given(data=arrays_of_shape(min_dims=2))
def test_layer_norm_normalises_and_matches_composed_twin(data):
    data = data + np.random.default_rng(0).standard_normal(data.shape)  # avoid constant rows
    x = th.Tensor(data)
    y = F.layer_norm(x, eps=1e-12).numpy()
    if data.shape[-1] > 1:
        np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-10)
        np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-8)
    centred = x - x.mean(axis=-1, keepdims=True)
    composed = centred / ((centred * centred).mean(axis=-1, keepdims=True) + 1e-12).sqrt()
    np.testing.assert_allclose(y, composed.numpy(), atol=1e-10)


def test_sum_loss_hides_a_wrong_layernorm_gradient_but_random_cotangent_does_not():
    """Why gradcheck uses a random cotangent: with g = 1 the layernorm input gradient is 0
    whatever its (wrong) terms, so a broken backward passes a .sum() check."""
    x = leaf(np.random.default_rng(0).standard_normal((3, 4)))
    y = F.layer_norm(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 0, atol=1e-12)  # every correct AND many wrong answers give 0


# ------------------------------------------------------------------ embedding
@given(st.data())
def test_embedding_gradient_accumulates_repeated_ids(data):
    vocab, dim = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    weight = data.draw(float64_arrays((vocab, dim)))
    id_shape = data.draw(shapes(max_dims=2))
    ids = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, vocab, size=id_shape)
    out = F.embedding(ids, th.Tensor(weight))
    np.testing.assert_array_equal(out.numpy(), weight[ids])
    assert th.gradcheck(lambda w: F.embedding(ids, w), [leaf(weight)])


def test_embedding_backward_counts_every_occurrence(device):
    weight = th.Tensor(backend.to_device(np.zeros((4, 2)), device), requires_grad=True)
    ids = backend.to_device(np.array([[1, 1], [3, 1]]), device)
    g = np.random.default_rng(7).standard_normal((2, 2, 2))  # (B, L, D) cotangent
    F.embedding(ids, weight).backward(backend.to_device(g, device))
    expected = [[0, 0], g[0, 0] + g[0, 1] + g[1, 1], [0, 0], g[1, 0]]  # id 1 three times
    np.testing.assert_allclose(backend.as_numpy(weight.grad), expected, rtol=1e-12)


# -------------------------------------------------------------------- dropout
def test_dropout_identity_when_off_and_scaled_when_on():
    x = th.Tensor(np.ones((200, 50)), requires_grad=True)
    assert F.dropout(x, 0.3, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 0.3)
    kept = y.numpy() != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.7)
    y.backward(np.ones(x.shape))
    np.testing.assert_allclose(x.grad, y.numpy())
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(x, 1.0)


def test_dropout_is_reproducible_with_manual_seed():
    x = th.Tensor(np.ones(100, dtype=np.float32))
    th.manual_seed(7)
    first = F.dropout(x, 0.5).numpy()
    th.manual_seed(7)
    np.testing.assert_array_equal(first, F.dropout(x, 0.5).numpy())
    assert first.dtype == np.float32


def test_ops_agree_across_backends(accelerator):
    """The same small graph on the accelerator gives the CPU float64 answer."""
    rng = np.random.default_rng(0)
    x_data, w_data = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    results = []
    for dev in ("cpu", accelerator):
        x, w = leaf(x_data, dev), leaf(w_data, dev)
        y = F.log_softmax(F.gelu(F.layer_norm(F.linear(x, w), None, None)))
        loss = F.cross_entropy(y, backend.to_device(np.array([0, 2, 4]), dev))
        loss.backward()
        results.append((loss.item(), backend.as_numpy(x.grad), backend.as_numpy(w.grad)))
    for cpu_value, other_value in zip(results[0], results[1]):
        np.testing.assert_allclose(cpu_value, other_value, rtol=1e-10, atol=1e-12)


@given(st.data())
def test_scatter_add_matches_numpy_add_at(data):
    """Both paths of backend.scatter_add (sorted distinct ids, and any ids) against np.add.at."""
    vocab = data.draw(st.integers(1, 8))
    ids = np.array(data.draw(st.lists(st.integers(-vocab, vocab - 1), max_size=12)), dtype=np.int64)
    if data.draw(st.booleans()):
        ids = np.unique(ids)  # sorted; distinct unless a negative id names a row twice
    values = data.draw(float64_arrays((len(ids), 3)))
    expected = np.zeros((vocab, 3))
    np.add.at(expected, ids, values)
    target = np.zeros((vocab, 3))
    backend.scatter_add(target, ids, values)
    np.testing.assert_allclose(target, expected, rtol=1e-12, atol=1e-12)
