"""One elementwise formula for both backends (``backend.elementwise``).

On NumPy a formula runs as written and must give exactly the numbers of the plain NumPy
maths (the reference: written out long-hand below, no tolerance). On CuPy it is traced
into one kernel; those cases compare it with NumPy to float32 round-off and skip
without a GPU.
"""
import math
import types
import warnings

import numpy as np
import pytest

from tinyhydra.engine import backend, norm, ops, softmax
from tinyhydra.nn import optim  # its formulas too, not only the optimizers


def test_elementwise_keeps_the_name_and_runs_numpy_as_written():
    @backend.elementwise
    def scaled_sum(xp, a, b, scale):
        """(a + b) * scale and its square root"""
        total = (a + b) * scale
        return total, xp.sqrt(total)

    a, b = np.arange(4.0), np.ones(4)
    total, root = scaled_sum(a, b, 2.0)
    np.testing.assert_array_equal(total, [2.0, 4.0, 6.0, 8.0])
    np.testing.assert_array_equal(root, np.sqrt([2.0, 4.0, 6.0, 8.0]))
    assert scaled_sum.__name__ == "scaled_sum" and "square root" in scaled_sum.__doc__


def test_elementwise_in_place_formula_writes_into_its_arguments():
    average, param = np.full(3, 10.0), np.zeros(3)
    assert optim.moving_average_formula(average, param, 0.75, 0.25) is None
    np.testing.assert_array_equal(average, [7.5, 7.5, 7.5])


def fake_gpu_module(monkeypatch, kernel_for):
    """Make every array look like a GPU array of a module whose ``fuse(kernel_name=...)(f)``
    returns ``kernel_for(kernel_name, f)``; its ufuncs are NumPy's. Returns the names fused."""
    fused = []

    def fuse(kernel_name):
        return lambda f: fused.append(kernel_name) or kernel_for(kernel_name, f)

    module = types.ModuleType("fake_cupy")
    module.sqrt, module.fuse = np.sqrt, fuse
    monkeypatch.setattr(backend, "get_array_module", lambda *arrays: module)
    return fused


def test_elementwise_fuses_once_per_module_and_reuses_the_kernel(monkeypatch):
    @backend.elementwise
    def root_sum(xp, a, b):
        return xp.sqrt(a + b)

    calls = []
    fused = fake_gpu_module(monkeypatch, lambda name, f: lambda *a: calls.append(name) or f(*a))
    for _ in range(3):
        np.testing.assert_array_equal(root_sum(np.full(2, 3.0), np.ones(2)), [2.0, 2.0])
    assert fused == ["tinyhydra_root_sum"] and calls == ["tinyhydra_root_sum"] * 3


def test_elementwise_falls_back_to_one_op_at_a_time_when_fusing_fails(monkeypatch):
    @backend.elementwise
    def root_sum(xp, a, b):
        return xp.sqrt(a + b)

    def failing_kernel(name, f):
        def kernel(*args):
            raise NotImplementedError("no fusion here")
        return kernel

    fused = fake_gpu_module(monkeypatch, failing_kernel)
    with pytest.raises(ValueError):  # the arguments' own error is raised, the kernel kept
        root_sum(np.ones(2), np.ones(3))
    with pytest.warns(RuntimeWarning, match="cupy.fuse failed on root_sum.*no fusion here"):
        np.testing.assert_array_equal(root_sum(np.full(2, 3.0), np.ones(2)), [2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; from now on the formula runs unfused
        np.testing.assert_array_equal(root_sum(np.full(2, 8.0), np.ones(2)), [3.0, 3.0])
    assert fused == ["tinyhydra_root_sum"]


def _inputs(rng, dtype=np.float32):
    x = rng.standard_normal((3, 5, 8)).astype(dtype)
    return x, rng.standard_normal(8).astype(dtype), rng.standard_normal(8).astype(dtype)


def test_layer_norm_steps_equal_the_plain_numpy_maths_exactly(rng):
    x, weight, bias = _inputs(rng)
    mean = x.mean(axis=-1, keepdims=True)
    centred, squared = norm.centre(x, mean)
    np.testing.assert_array_equal(centred, x - mean)
    np.testing.assert_array_equal(squared, (x - mean) * (x - mean))
    variance = squared.mean(axis=-1, keepdims=True)
    inv_std = norm.inverse_std(variance, 1e-5)
    np.testing.assert_array_equal(inv_std, 1.0 / np.sqrt(variance + np.float32(1e-5)))
    assert inv_std.dtype == np.float32  # the Python eps does not promote
    xhat, y = norm.normalise(centred, inv_std, weight, bias)
    np.testing.assert_array_equal(xhat, centred * inv_std)
    np.testing.assert_array_equal(y, xhat * weight + bias)
    g = rng.standard_normal(x.shape).astype(np.float32)
    mean_g, mean_gx = g.mean(axis=-1, keepdims=True), (g * xhat).mean(axis=-1, keepdims=True)
    np.testing.assert_array_equal(norm.input_grad(g, mean_g, xhat, mean_gx, inv_std),
                                  (g - mean_g - xhat * mean_gx) * inv_std)


def test_gelu_and_dropout_formulas_equal_the_plain_numpy_maths_exactly(rng):
    x, g = rng.standard_normal((2, 2, 6)).astype(np.float32)
    y, t = ops.gelu_and_tanh(x)
    c = math.sqrt(2 / math.pi)
    np.testing.assert_array_equal(t, np.tanh(c * (x + 0.044715 * (x * x * x))))
    np.testing.assert_array_equal(y, 0.5 * x * (1 + t))
    np.testing.assert_array_equal(
        ops.gelu_grad(g, x, t), g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (c * (1 + 3 * 0.044715 * x * x))))
    uniform = rng.random(x.shape, dtype=np.float32)
    dropped, mask = ops.drop(x, uniform, 0.25, 1 / 0.75)
    expected_mask = (uniform >= 0.25) * np.float32(1 / 0.75)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(dropped, x * expected_mask)


def test_cross_entropy_row_formulas_equal_the_plain_numpy_maths_exactly(rng):
    kept = rng.random(7) < 0.6
    sum_exp, shifted = rng.random(7).astype(np.float32) + 1, rng.standard_normal(7).astype(np.float32)
    np.testing.assert_array_equal(softmax.kept_row_losses(kept, sum_exp, shifted),
                                  np.where(kept, np.log(sum_exp) - shifted, 0))
    scale = np.float32(0.25) / np.float32(3)
    row_scale, row_factor = softmax.kept_row_scales(kept, scale, sum_exp)
    np.testing.assert_array_equal(row_scale, np.where(kept, scale, 0).astype(np.float32))
    np.testing.assert_array_equal(row_factor, row_scale / sum_exp)
    assert row_scale.dtype == row_factor.dtype == np.float32


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_formula_equals_the_chain_of_in_place_steps_exactly(weight_decay, decoupled, rng):
    param, grad, m, v = (rng.standard_normal(50).astype(np.float32) for _ in range(4))
    v = v * v
    lr, (beta1, beta2), eps, step = 1e-3, (0.9, 0.98), 1e-8, 7
    expected = [param.copy(), m.copy(), v.copy()]
    p_, m_, v_ = expected
    g_ = grad + weight_decay * p_ if not decoupled else grad
    if decoupled:
        p_ *= 1.0 - lr * weight_decay
    m_ *= beta1
    m_ += (1.0 - beta1) * g_
    v_ *= beta2
    v_ += (1.0 - beta2) * g_ * g_
    denom = np.sqrt(v_)
    denom *= 1.0 / math.sqrt(1.0 - beta2**step)
    denom += eps
    p_ -= (m_ / denom) * (lr / (1.0 - beta1**step))
    grad_before = grad.copy()
    optim.adam_update(param, grad, m, v, step, lr, (beta1, beta2), eps, weight_decay, decoupled)
    for got, want in zip((param, m, v), expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(grad, grad_before)  # the gradient is left as computed


FORMULAS = {  # name -> (formula, draws its arguments from rng)
    "centre": (norm.centre, lambda r: (r.standard_normal((4, 9)), r.standard_normal((4, 1)))),
    "inverse_std": (norm.inverse_std, lambda r: (r.random((4, 1)), 1e-5)),
    "normalise": (norm.normalise, lambda r: (r.standard_normal((4, 9)), r.random((4, 1)),
                                             r.standard_normal(9), r.standard_normal(9))),
    "input_grad": (norm.input_grad, lambda r: (r.standard_normal((4, 9)), r.standard_normal((4, 1)),
                                               r.standard_normal((4, 9)), r.standard_normal((4, 1)),
                                               r.random((4, 1)))),
    "gelu_and_tanh": (ops.gelu_and_tanh, lambda r: (r.standard_normal((4, 9)),)),
    "gelu_grad": (ops.gelu_grad, lambda r: (r.standard_normal((4, 9)), r.standard_normal((4, 9)),
                                            np.tanh(r.standard_normal((4, 9))))),
    "drop": (ops.drop, lambda r: (r.standard_normal((4, 9)), r.random((4, 9)), 0.3, 1 / 0.7)),
    "adam": (optim.adam_formula, lambda r: (r.standard_normal(30), r.standard_normal(30),
                                            r.standard_normal(30), r.random(30), 0.9, 0.1, 0.999,
                                            0.001, 1.2, 1e-8, 1e-3, 0.01, 0.999)),
    "kept_row_losses": (softmax.kept_row_losses, lambda r: (r.random(9) < 0.5, r.random(9) + 1,
                                                            r.standard_normal(9))),
    "kept_row_scales": (softmax.kept_row_scales, lambda r: (r.random(9) < 0.5, np.asarray(0.3),
                                                            r.random(9) + 1)),
    "moving_average": (optim.moving_average_formula, lambda r: (r.standard_normal(30),
                                                                r.standard_normal(30), 0.99, 0.01)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_fused_kernel_equals_numpy(name, dtype, accelerator, rng):
    """The CuPy kernel of each formula against the same formula on NumPy; in-place
    formulas are compared through the arguments they write."""
    formula, draw = FORMULAS[name]
    host = [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in draw(rng)]
    device = [backend.to_device(a, accelerator) if isinstance(a, np.ndarray) else a for a in host]
    want, got = formula(*host), formula(*device)
    if want is None:  # in place
        want, got = host, device
    want = want if isinstance(want, (tuple, list)) else (want,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for w, g in zip(want, got):
        if isinstance(w, np.ndarray):
            assert backend.is_gpu_array(g) and g.dtype == w.dtype
            np.testing.assert_allclose(backend.as_numpy(g), w, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_fused_gpu_kernel_traces_in_the_arrays_dtype(name, dtype, rng):
    """cupy.fuse's own tracer (no GPU needed: the arrays are headers over no memory)
    turns each formula into one elementwise kernel that computes in the arrays' dtype,
    never float16 (two Python scalars meeting inside a kernel would)."""
    cupy = pytest.importorskip("cupy")
    fusion = pytest.importorskip("cupy._core.fusion")
    thread_local = pytest.importorskip("cupy._core._fusion_thread_local").thread_local
    nowhere = cupy.cuda.UnownedMemory(1 << 20, 1 << 30, None, device_id=0)
    formula, draw = FORMULAS[name]
    args = [cupy.ndarray(a.shape, dtype=dtype if a.dtype.kind == "f" else a.dtype,
                         memptr=cupy.cuda.MemoryPointer(nowhere, 0))
            if isinstance(a, np.ndarray) else a for a in draw(rng)]
    history = thread_local.history = fusion._FusionHistory()
    thread_local.is_old_fusing = True
    try:
        kernel, _ = history.get_fusion(lambda *a: formula.__wrapped__(cupy, *a), args, name)
    finally:
        thread_local.history, thread_local.is_old_fusing = None, False
    assert type(kernel).__name__ == "ElementwiseKernel"
    assert "float16" not in kernel.operation
    assert {p.dtype for p in kernel.out_params} <= {np.dtype(dtype)}
