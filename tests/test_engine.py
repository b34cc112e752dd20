"""The graph machinery: topological order, accumulation, broadcasting, freeing, errors."""
import numpy as np
import pytest
from hypothesis import given

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra.engine import backend, ops
from tinyhydra.nn import flat

from .strategies import broadcastable_pair


def test_tensor_keeps_dtype_and_data():
    data = np.arange(6, dtype=np.float64).reshape(2, 3)
    x = th.Tensor(data, requires_grad=True)
    assert x.dtype == np.float64 and x.data is data and x.shape == (2, 3)
    assert th.Tensor(data.astype(np.float32)).dtype == np.float32
    assert isinstance(x.numpy(), np.ndarray)


def test_reused_intermediate_gets_both_contributions():
    a = th.Tensor(np.array([1.5, -2.0]), requires_grad=True)
    b = a + a
    c = b * b  # c = 4 a^2, dc/da = 8 a
    c.backward(np.ones(2))
    np.testing.assert_allclose(a.grad, 8 * a.data)


def test_diamond_graph_matches_hand_derivative():
    x = th.Tensor(np.array([0.3, 0.7]), requires_grad=True)
    y = x.exp()
    z = y * x + y.tanh()  # dz/dx = y x + y + (1 - tanh(y)^2) y
    z.backward(np.ones(2))
    y_ = np.exp(x.data)
    np.testing.assert_allclose(x.grad, y_ * x.data + y_ + (1 - np.tanh(y_) ** 2) * y_)


def test_long_chain_has_no_recursion_limit():
    x = th.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.001 + 0.0
    y.backward(np.ones(1))
    np.testing.assert_allclose(x.grad, [1.001**3000])


def test_gradients_accumulate_across_backward_calls():
    rng = np.random.default_rng(0)
    first, second = rng.standard_normal(2), rng.standard_normal(2)  # random cotangents
    x = th.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 2.0).backward(first)
    (x * 3.0).backward(second)
    np.testing.assert_allclose(x.grad, 2.0 * first + 3.0 * second, rtol=1e-15)
    x.zero_grad()
    assert x.grad is None


def test_graph_is_freed_after_backward():
    x = th.Tensor(np.ones(3), requires_grad=True)
    y = (x * 2.0).sum()
    y.backward()
    assert y._node is None
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal(3), rng.standard_normal(3)  # random cotangents
    x = th.Tensor(np.ones(3), requires_grad=True)
    y = x * 2.0
    y.backward(first, retain_graph=True)
    y.backward(second)
    np.testing.assert_allclose(x.grad, 2.0 * (first + second), rtol=1e-15)


def test_no_grad_builds_no_graph():
    x = th.Tensor(np.ones(3), requires_grad=True)
    with th.no_grad():
        y = x * 2.0 + 1.0
        assert not th.is_grad_enabled()
    assert th.is_grad_enabled()
    assert not y.requires_grad and y._node is None


def test_intermediate_grads_are_not_kept_and_constants_get_none():
    x = th.Tensor(np.ones(2), requires_grad=True)
    c = th.Tensor(np.full(2, 3.0))
    y = x * c
    cotangent = np.random.default_rng(2).standard_normal(2)
    y.backward(cotangent)
    assert y.grad is None and c.grad is None
    np.testing.assert_allclose(x.grad, 3.0 * cotangent, rtol=1e-15)


@given(broadcastable_pair())
def test_broadcast_gradients_reduce_to_each_input_shape(pair):
    a_data, b_data = pair
    a = th.Tensor(a_data, requires_grad=True)
    b = th.Tensor(b_data, requires_grad=True)
    out = a * b + a - b / (1.5 + b * b)
    cotangent = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(cotangent)
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    # independent reference: broadcast explicitly, differentiate elementwise, sum back
    A, B = np.broadcast_arrays(a_data, b_data)
    dA = cotangent * (B + 1)
    dB = cotangent * (A - (1.5 - B * B) / (1.5 + B * B) ** 2)
    expected_a = dA.sum(axis=tuple(range(dA.ndim - a.ndim))) if dA.ndim > a.ndim else dA
    expected_b = dB.sum(axis=tuple(range(dB.ndim - b.ndim))) if dB.ndim > b.ndim else dB
    expected_a = expected_a.sum(axis=tuple(i for i, n in enumerate(a.shape) if n == 1), keepdims=True)
    expected_b = expected_b.sum(axis=tuple(i for i, n in enumerate(b.shape) if n == 1), keepdims=True)
    np.testing.assert_allclose(a.grad, expected_a, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(b.grad, expected_b, rtol=1e-10, atol=1e-10)


def test_python_scalars_keep_float32():
    x = th.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (2.0 * x - 1.0) / 3.0 + x**2
    assert y.dtype == np.float32
    cotangent = np.random.default_rng(5).standard_normal(3).astype(np.float32)
    y.backward(cotangent)
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, (2.0 / 3.0 + 2.0) * cotangent, rtol=1e-6)  # x = 1


def test_ndarray_on_the_left_dispatches_to_tensor():
    x = th.Tensor(np.ones(2), requires_grad=True)
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, th.Tensor)
    cotangent = np.random.default_rng(3).standard_normal(2)
    y.backward(cotangent)
    np.testing.assert_allclose(x.grad, np.array([2.0, 3.0]) * cotangent, rtol=1e-15)


def test_backward_on_non_scalar_needs_a_gradient():
    x = th.Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="needs a one-element tensor"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="grad has shape"):
        (x * 2.0).backward(np.ones(3))


def test_backward_without_requires_grad_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        th.Tensor(np.ones(2)).backward(np.ones(2))


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        th.Tensor(np.arange(3), requires_grad=True)


def test_matmul_shape_mismatch_is_clear():
    a = th.Tensor(np.ones((2, 3)))
    b = th.Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul shape mismatch: \(2, 3\) @ \(4, 5\)"):
        a @ b


def test_embedding_rejects_bad_ids():
    weight = th.Tensor(np.ones((5, 2)), requires_grad=True)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(np.array([0.5, 1.0]), weight)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        F.embedding(np.array([0, 5]), weight)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        F.embedding(np.array([-1, 2]), weight)


def test_cross_entropy_rejects_bad_targets():
    logits = th.Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(IndexError, match="target ids"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="do not match"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))


def test_layer_norm_rejects_wrong_parameter_shape():
    x = th.Tensor(np.ones((2, 4)))
    with pytest.raises(ValueError, match="weight has shape"):
        F.layer_norm(x, th.Tensor(np.ones(3)), th.Tensor(np.zeros(4)))


def test_to_gpu_without_cupy_names_the_missing_piece():
    if backend.gpu_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(th.BackendError, match="CuPy"):
        th.Tensor(np.ones(2)).to("gpu")


def test_to_and_from_device_round_trip(device):
    x = th.Tensor(np.arange(4.0), requires_grad=True).to(device)
    assert x.device == device and x.requires_grad
    cotangent = np.random.default_rng(4).standard_normal(4)
    (x * x).backward(backend.to_device(cotangent, device))
    np.testing.assert_allclose(backend.as_numpy(x.grad), 2 * np.arange(4.0) * cotangent, rtol=1e-15)
    np.testing.assert_allclose(x.to("cpu").numpy(), np.arange(4.0))


def test_bad_device_name():
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        th.Tensor(np.ones(2)).to("tpu")


def test_profiler_counts_forward_and_backward():
    x = th.Tensor(np.ones((3, 3)), requires_grad=True)
    cotangent = np.random.default_rng(6).standard_normal((3, 3))
    with th.profile() as prof:
        (x @ x).tanh().backward(cotangent)
    rows = prof.by_function()
    assert rows["MatMul"]["calls"] == 1 and rows["MatMul"]["backward"] > 0
    assert set(rows) == {"MatMul", "Tanh"}
    assert "MatMul" in prof.table()


def test_profiler_wraps_functions_only_while_active():
    """The engine has no profiling code: the profiler wraps each Function's forward and
    backward for the block and puts the very same methods back afterwards."""
    originals = {name: (vars(cls).get("forward"), vars(cls).get("backward"))
                 for name, cls in (("MatMul", ops.MatMul), ("Tanh", ops.Tanh))}
    x = th.Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="inside"), th.profile():
        assert vars(ops.MatMul)["forward"] is not originals["MatMul"][0]
        raise ValueError("an error inside the block")
    for name, cls in (("MatMul", ops.MatMul), ("Tanh", ops.Tanh)):
        assert (vars(cls).get("forward"), vars(cls).get("backward")) == originals[name]
    with th.profile() as outer, pytest.raises(RuntimeError, match="do not nest"), th.profile():
        pass
    (x @ x).sum().backward()  # after the block nothing is recorded any more
    assert outer.calls == {}


def test_profiler_names_an_inherited_forward_after_the_class_applied():
    class Double(th.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    class AlsoDouble(Double):
        pass

    x = th.Tensor(np.ones(3), requires_grad=True)
    with th.profile() as prof:
        AlsoDouble.apply(x).backward(np.random.default_rng(7).standard_normal(3))
    rows = prof.by_function()
    assert set(rows) == {"AlsoDouble"} and rows["AlsoDouble"]["calls"] == 1
    assert prof.calls[("AlsoDouble", "backward")] == 1
    assert "forward" not in vars(AlsoDouble)  # inherited again after the block


def test_function_outputs_are_arrays_and_only_floats_carry_gradients():
    class Total(th.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()  # a NumPy scalar, not an array

        @staticmethod
        def backward(ctx, g):
            return np.ones(3) * g

    class Floor(th.Function):
        @staticmethod
        def forward(ctx, x):
            return np.floor(x).astype(np.int64)

    x = th.Tensor(np.arange(3.0), requires_grad=True)
    total = Total.apply(x)
    assert isinstance(total.data, np.ndarray) and total.shape == ()
    total.backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))
    with pytest.raises(TypeError, match="Floor returned dtype int64"):
        Floor.apply(x)


def test_packed_parameter_gets_its_gradient_in_the_flat_view():
    """A packed parameter's first gradient is written into its view of the flat gradient;
    once its data was replaced (another dtype here), it gets a fresh array of its own dtype."""
    p = th.Tensor(np.ones(3), requires_grad=True)
    packing = flat.FlatParameters([p])
    cotangent = np.random.default_rng(8).standard_normal(3)
    (p * 2.0).backward(cotangent)
    assert p.grad is packing.grad_views[0]
    np.testing.assert_allclose(packing.groups[0].grad, 2.0 * cotangent, rtol=1e-15)
    p.grad = None
    p.data = p.data.astype(np.float32)  # as Module.to_dtype does
    (p * 2.0).backward(cotangent.astype(np.float32))
    assert p.grad.dtype == np.float32 and not np.shares_memory(p.grad, packing.groups[0].grad)
