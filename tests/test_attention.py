"""Fused attention Functions (softmax, linear, Hydra) against their quadratic references.

Every fused op is checked three ways: forward against the composed reference in
tinyhydra.attention.reference (to 1e-10 in float64), its hand-written backward against
central differences (th.gradcheck, random cotangent), and against the reference's
autograd gradients under the same random cotangent.
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyhydra as th
from tinyhydra.attention.hydra import hydra_attention
from tinyhydra.attention.linear_attention import FusedLinearAttention, linear_attention
from tinyhydra.attention.masking import causal_mask
from tinyhydra.attention.reference import (
    hydra_attention_reference,
    linear_attention_reference,
    softmax_attention_reference,
)
from tinyhydra.attention.softmax_attention import softmax_attention

from .strategies import attention_shapes, bool_masks, heads_for, qkv_case

FORWARD_TOL = 1e-10
GRAD_TOL = 1e-9


def leaves(*arrays, dtype=np.float64):
    return [th.Tensor(np.array(a, dtype=dtype), requires_grad=True) for a in arrays]


def forward_and_grads(fn, arrays, cotangent):
    """fn(*tensors), and d<cotangent, out>/d(each input) via out.backward(cotangent)."""
    tensors = leaves(*arrays)
    out = fn(*tensors)
    out.backward(cotangent)
    return out.data, [t.grad for t in tensors]


def assert_same_forward_and_grads(fused, reference, arrays, seed=0):
    tensors = leaves(*arrays)
    with th.no_grad():
        shape = fused(*tensors).shape
    cotangent = np.random.default_rng(seed).standard_normal(shape)
    out_f, grads_f = forward_and_grads(fused, arrays, cotangent)
    out_r, grads_r = forward_and_grads(reference, arrays, cotangent)
    assert np.all(np.isfinite(out_f))
    np.testing.assert_allclose(out_f, out_r, rtol=0, atol=FORWARD_TOL)
    for name, gf, gr in zip("qkv", grads_f, grads_r):
        assert gf is not None and gf.shape == gr.shape, name
        assert np.all(np.isfinite(gf)), name
        np.testing.assert_allclose(gf, gr, rtol=1e-9, atol=GRAD_TOL, err_msg=f"d{name}")


EXAMPLES = settings(deadline=None, max_examples=25)
FEW = settings(deadline=None, max_examples=10)


# ------------------------------------------------------------------------------ Hydra
@EXAMPLES
@given(case=qkv_case(), causal=st.booleans())
def test_hydra_matches_reference(case, causal):
    q, k, v, key_mask = case
    assert_same_forward_and_grads(
        lambda a, b, c: hydra_attention(a, b, c, causal=causal, key_mask=key_mask),
        lambda a, b, c: hydra_attention_reference(a, b, c, causal=causal, key_mask=key_mask),
        (q, k, v),
    )


@FEW
@given(case=qkv_case(max_len=5, max_dim=5), causal=st.booleans())
def test_hydra_gradcheck(case, causal):
    q, k, v, key_mask = case
    assert th.gradcheck(lambda a, b, c: hydra_attention(a, b, c, causal=causal, key_mask=key_mask),
                        leaves(q, k, v))


def test_hydra_all_keys_masked_gives_zero():
    rng = np.random.default_rng(1)
    q, k, v = leaves(*(rng.standard_normal((2, 5, 4)) for _ in range(3)))
    mask = np.zeros((2, 5), dtype=bool)
    for causal in (False, True):
        out = hydra_attention(q, k, v, causal=causal, key_mask=mask)
        assert np.array_equal(out.data, np.zeros((2, 5, 4)))
        out.backward(rng.standard_normal(out.shape))
        for t in (q, k, v):
            assert np.array_equal(t.grad, np.zeros_like(t.data))
            t.grad = None


def test_hydra_closed_form_small():
    """out_i = phi(q_i) * sum_t phi(k_t) * v_t written with numpy directly."""
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 4, 3)) for _ in range(3))
    qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
    kn = k / np.linalg.norm(k, axis=-1, keepdims=True)
    out = hydra_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v)).data
    np.testing.assert_allclose(out, qn * (kn * v).sum(axis=1, keepdims=True), atol=1e-12)
    out = hydra_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v), causal=True).data
    np.testing.assert_allclose(out, qn * np.cumsum(kn * v, axis=1), atol=1e-12)


def test_hydra_cross_attention_lengths():
    """Bidirectional Hydra accepts queries of another length than the keys."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 3, 4))
    k, v = rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 6, 4))
    mask = rng.random((2, 6)) > 0.3
    assert_same_forward_and_grads(
        lambda a, b, c: hydra_attention(a, b, c, key_mask=mask),
        lambda a, b, c: hydra_attention_reference(a, b, c, key_mask=mask),
        (q, k, v),
    )


@pytest.mark.parametrize("causal", [False, True])
def test_hydra_long_sequence_memory_is_linear(causal):
    """L = 8192, D = 16 float32: forward + backward peak far below one L x L matrix."""
    length, dim = 8192, 16
    rng = np.random.default_rng(4)
    q, k, v = leaves(*(rng.standard_normal((1, length, dim)) for _ in range(3)),
                     dtype=np.float32)
    key_mask = rng.random((1, length)) > 0.1
    cotangent = rng.standard_normal((1, length, dim)).astype(np.float32)
    tracemalloc.start()
    try:
        out = hydra_attention(q, k, v, causal=causal, key_mask=key_mask)
        out.backward(cotangent)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_square = length * length * 4  # a single float32 L x L matrix: 256 MiB
    assert peak < one_square / 8, f"peak {peak / 2**20:.1f} MiB"
    assert peak < 64 * length * dim * 4  # O(L D): a few dozen (L, D) arrays at most
    assert out.dtype == np.float32 and all(t.grad.dtype == np.float32 for t in (q, k, v))
    assert np.all(np.isfinite(out.data)) and all(np.all(np.isfinite(t.grad)) for t in (q, k, v))


# -------------------------------------------------------------------- linear attention
@EXAMPLES
@given(case=qkv_case(), causal=st.booleans(), data=st.data())
def test_linear_attention_matches_reference(case, causal, data):
    q, k, v, key_mask = case
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    assert_same_forward_and_grads(
        lambda a, b, c: linear_attention(a, b, c, num_heads, causal=causal, key_mask=key_mask),
        lambda a, b, c: linear_attention_reference(a, b, c, num_heads, causal=causal,
                                                   key_mask=key_mask),
        (q, k, v),
    )


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("num_heads", [1, 2, 3, 4, 6, 12])
def test_linear_attention_every_head_count(causal, num_heads):
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 6, 12)) for _ in range(3))
    key_mask = rng.random((2, 6)) > 0.3
    assert_same_forward_and_grads(
        lambda a, b, c: linear_attention(a, b, c, num_heads, causal=causal, key_mask=key_mask),
        lambda a, b, c: linear_attention_reference(a, b, c, num_heads, causal=causal,
                                                   key_mask=key_mask),
        (q, k, v),
    )


@FEW
@given(case=qkv_case(max_len=5, max_dim=6), causal=st.booleans(), data=st.data())
def test_linear_attention_gradcheck(case, causal, data):
    q, k, v, key_mask = case
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    assert th.gradcheck(
        lambda a, b, c: linear_attention(a, b, c, num_heads, causal=causal, key_mask=key_mask),
        leaves(q, k, v))


@EXAMPLES
@given(case=qkv_case(), data=st.data())
def test_causal_linear_attention_any_chunk_length(case, data):
    """The causal form works in chunks of C positions (64 by default): every C from 1
    to L, padded or not, gives the reference's values and gradients."""
    q, k, v, key_mask = case
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    chunk = data.draw(st.integers(1, q.shape[1]), label="chunk")
    assert_same_forward_and_grads(
        lambda a, b, c: FusedLinearAttention.apply(a, b, c, num_heads=num_heads, causal=True,
                                              key_mask=key_mask, chunk=chunk),
        lambda a, b, c: linear_attention_reference(a, b, c, num_heads, causal=True,
                                                   key_mask=key_mask),
        (q, k, v),
    )


@FEW
@given(case=qkv_case(max_len=6, max_dim=4), data=st.data())
def test_causal_linear_attention_chunked_gradcheck(case, data):
    q, k, v, key_mask = case
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    chunk = data.draw(st.integers(1, q.shape[1]), label="chunk")
    assert th.gradcheck(
        lambda a, b, c: FusedLinearAttention.apply(a, b, c, num_heads=num_heads, causal=True,
                                              key_mask=key_mask, chunk=chunk),
        leaves(q, k, v))


def test_causal_linear_attention_several_default_chunks():
    """L = 150: three chunks of 64, the last one padded."""
    rng = np.random.default_rng(15)
    q, k, v = (rng.standard_normal((2, 150, 4)) for _ in range(3))
    key_mask = rng.random((2, 150)) > 0.2
    assert_same_forward_and_grads(
        lambda a, b, c: linear_attention(a, b, c, 2, causal=True, key_mask=key_mask),
        lambda a, b, c: linear_attention_reference(a, b, c, 2, causal=True, key_mask=key_mask),
        (q, k, v),
    )


@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_value_dim_differs(causal):
    rng = np.random.default_rng(6)
    q, k = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))
    v = rng.standard_normal((2, 5, 6))
    assert_same_forward_and_grads(
        lambda a, b, c: linear_attention(a, b, c, 2, causal=causal),
        lambda a, b, c: linear_attention_reference(a, b, c, 2, causal=causal),
        (q, k, v),
    )


# ------------------------------------------------------------------- softmax attention
@st.composite
def softmax_case(draw):
    """q (B, L, d), k (B, S, d), v (B, S, dv) and a (B, L, S) or (L, S) mask (or None)."""
    batch, length, dim = draw(attention_shapes())
    keys = draw(st.integers(1, 7))
    value_dim = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.standard_normal((batch, length, dim))
    k = rng.standard_normal((batch, keys, dim))
    v = rng.standard_normal((batch, keys, value_dim))
    mask_shape = draw(st.sampled_from([(batch, length, keys), (length, keys), (batch, 1, keys)]))
    mask = draw(st.none() | bool_masks(mask_shape))
    return q, k, v, mask


@EXAMPLES
@given(case=softmax_case())
def test_softmax_attention_matches_reference(case):
    q, k, v, mask = case
    assert_same_forward_and_grads(
        lambda a, b, c: softmax_attention(a, b, c, mask=mask),
        lambda a, b, c: softmax_attention_reference(a, b, c, mask=mask),
        (q, k, v),
    )
    if mask is not None:  # rows with no allowed key are exactly 0
        out = softmax_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v), mask=mask).data
        empty = ~np.broadcast_to(mask, q.shape[:-1] + (k.shape[1],)).any(axis=-1)
        assert np.all(out[empty] == 0)


@FEW
@given(case=softmax_case())
def test_softmax_attention_gradcheck(case):
    q, k, v, mask = case
    assert th.gradcheck(lambda a, b, c: softmax_attention(a, b, c, mask=mask), leaves(q, k, v))


def test_softmax_attention_fully_masked_rows_no_nan():
    rng = np.random.default_rng(7)
    q, k, v = leaves(*(rng.standard_normal((2, 4, 3)) for _ in range(3)))
    mask = rng.random((2, 4, 4)) > 0.5
    mask[0, 1] = False
    mask[1] = False
    out = softmax_attention(q, k, v, mask=mask)
    assert np.all(out.data[0, 1] == 0) and np.all(out.data[1] == 0)
    out.backward(rng.standard_normal(out.shape))
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad))
    assert np.all(q.grad[0, 1] == 0) and np.all(q.grad[1] == 0)
    assert np.all(k.grad[1] == 0) and np.all(v.grad[1] == 0)


@EXAMPLES
@given(case=softmax_case())
def test_softmax_attention_rows_sum_to_one(case):
    """With v = I (S x S) the output is P itself."""
    q, k, _, mask = case
    keys = k.shape[1]
    v = np.broadcast_to(np.eye(keys), (q.shape[0], keys, keys)).copy()
    probs = softmax_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v), mask=mask).data
    allowed = np.ones(probs.shape, bool) if mask is None else np.broadcast_to(mask, probs.shape)
    assert np.all(probs >= 0) and np.all(probs[~allowed] == 0)
    np.testing.assert_allclose(probs.sum(-1)[allowed.any(-1)], 1.0, atol=1e-12)


def test_softmax_attention_large_logits_stable():
    q = th.Tensor(np.array([[[30.0, 0.0], [0.0, -40.0]]]) * 30)
    k = th.Tensor(np.array([[[30.0, 1.0], [-30.0, 1.0]]]))
    v = th.Tensor(np.eye(2)[None])
    out = softmax_attention(q, k, v, mask=np.array([[True, True], [False, True]]))
    assert np.all(np.isfinite(out.data))
    np.testing.assert_allclose(out.data.sum(-1), 1.0)


def test_softmax_attention_accepts_tensor_mask_and_4d():
    rng = np.random.default_rng(8)
    q, k, v = leaves(*(rng.standard_normal((2, 2, 5, 4)) for _ in range(3)))
    padding = th.Tensor(rng.random((2, 1, 1, 5)) > 0.3)
    out = softmax_attention(q, k, v, mask=padding)
    ref = softmax_attention_reference(q, k, v, mask=padding.data)
    np.testing.assert_allclose(out.data, ref.data, atol=FORWARD_TOL)


# --------------------------------------------------------------------------- causality
def _causal_fns(num_heads):
    return {
        "hydra": lambda q, k, v: hydra_attention(q, k, v, causal=True),
        "linear": lambda q, k, v: linear_attention(q, k, v, num_heads, causal=True),
        "softmax": lambda q, k, v: softmax_attention(q, k, v, mask=causal_mask(q.shape[-2])),
    }


@EXAMPLES
@given(case=qkv_case(), data=st.data())
def test_causal_outputs_ignore_the_future(case, data):
    q, k, v, _ = case
    length = q.shape[1]
    position = data.draw(st.integers(0, length - 1), label="i")
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    rng = np.random.default_rng(position)
    later = slice(position + 1, None)
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    for array in (q2, k2, v2):
        array[:, later] += rng.standard_normal(array[:, later].shape)
    for name, fn in _causal_fns(num_heads).items():
        before = fn(th.Tensor(q), th.Tensor(k), th.Tensor(v)).data
        after = fn(th.Tensor(q2), th.Tensor(k2), th.Tensor(v2)).data
        np.testing.assert_allclose(after[:, :position + 1], before[:, :position + 1],
                                   rtol=0, atol=1e-12, err_msg=name)
        # and the future does move later outputs (softmax is left out: a saturated
        # softmax row can ignore the perturbed keys entirely)
        if position + 1 < length and name != "softmax":
            assert not np.allclose(after[:, later], before[:, later]), name


def test_bidirectional_outputs_see_the_future():
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((1, 4, 4)) for _ in range(3))
    k2 = k.copy()
    k2[:, 3] += 1.0
    for fn in (lambda *a: hydra_attention(*a), lambda *a: linear_attention(*a, 2),
               lambda *a: softmax_attention(*a)):
        before = fn(th.Tensor(q), th.Tensor(k), th.Tensor(v)).data
        after = fn(th.Tensor(q), th.Tensor(k2), th.Tensor(v)).data
        assert not np.allclose(before[:, 0], after[:, 0])


# ------------------------------------------------------------------------ masked keys
@EXAMPLES
@given(case=qkv_case(), causal=st.booleans(), data=st.data())
def test_masked_keys_change_nothing(case, causal, data):
    q, k, v, key_mask = case
    if key_mask is None:
        key_mask = np.ones(q.shape[:2], bool)
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    rng = np.random.default_rng(10)
    k2, v2 = k.copy(), v.copy()
    k2[~key_mask] = 5 * rng.standard_normal(k2[~key_mask].shape)
    v2[~key_mask] = 5 * rng.standard_normal(v2[~key_mask].shape)
    length = q.shape[1]
    allowed = key_mask[:, None, :] & (causal_mask(length) if causal else True)
    fns = {
        "hydra": lambda a, b, c: hydra_attention(a, b, c, causal=causal, key_mask=key_mask),
        "linear": lambda a, b, c: linear_attention(a, b, c, num_heads, causal=causal,
                                                   key_mask=key_mask),
        "softmax": lambda a, b, c: softmax_attention(a, b, c, mask=allowed),
    }
    for name, fn in fns.items():
        before = fn(th.Tensor(q), th.Tensor(k), th.Tensor(v)).data
        after = fn(th.Tensor(q), th.Tensor(k2), th.Tensor(v2)).data
        np.testing.assert_allclose(after, before, rtol=0, atol=1e-12, err_msg=name)
        # and masked keys receive no gradient
        tq, tk, tv = leaves(q, k, v)
        fn(tq, tk, tv).backward(rng.standard_normal(before.shape))
        assert np.all(tk.grad[~key_mask] == 0) and np.all(tv.grad[~key_mask] == 0), name


POISON = st.sampled_from([np.nan, np.inf, -np.inf])


def _masked_key_fns(num_heads, causal, key_mask):
    length = key_mask.shape[-1]
    allowed = key_mask[:, None, :] & (causal_mask(length) if causal else True)
    return {
        "hydra": lambda a, b, c: hydra_attention(a, b, c, causal=causal, key_mask=key_mask),
        "linear": lambda a, b, c: linear_attention(a, b, c, num_heads, causal=causal,
                                                   key_mask=key_mask),
        "softmax": lambda a, b, c: softmax_attention(a, b, c, mask=allowed),
    }


@pytest.mark.parametrize("name", ["hydra", "linear", "softmax"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@EXAMPLES
@given(case=qkv_case(), data=st.data())
def test_nan_or_inf_in_masked_keys_never_reaches_outputs_or_gradients(name, causal, case, data):
    """Masked keys are removed by selection: a NaN/inf stored in a masked key or value
    (0 * NaN = NaN, were it a product) leaves the output and every gradient exactly as
    with finite values there, and masked keys still receive exactly 0 gradient."""
    q, k, v, key_mask = case
    key_mask = np.ones(q.shape[:2], bool) if key_mask is None else key_mask.copy()
    key_mask[data.draw(st.integers(0, q.shape[0] - 1)), data.draw(st.integers(0, q.shape[1] - 1))] = False
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    fn = _masked_key_fns(num_heads, causal, key_mask)[name]
    masked = ~key_mask[..., None]
    k_bad = np.where(masked, data.draw(hnp.arrays(np.float64, k.shape, elements=POISON)), k)
    v_bad = np.where(masked, data.draw(hnp.arrays(np.float64, v.shape, elements=POISON)), v)
    cotangent = np.random.default_rng(17).standard_normal(q.shape)
    out, grads = forward_and_grads(fn, (q, k, v), cotangent)
    out_bad, grads_bad = forward_and_grads(fn, (q, k_bad, v_bad), cotangent)
    assert np.all(np.isfinite(out_bad))
    np.testing.assert_array_equal(out_bad, out)
    for grad_name, g, g_bad in zip("qkv", grads, grads_bad):
        assert np.all(np.isfinite(g_bad)), grad_name
        np.testing.assert_array_equal(g_bad, g, err_msg=grad_name)
    for g_bad in grads_bad[1:]:
        assert np.all(g_bad[~key_mask] == 0)


def test_key_mask_broadcasts_and_accepts_tensor():
    rng = np.random.default_rng(11)
    q, k, v = (rng.standard_normal((3, 5, 4)) for _ in range(3))
    shared = rng.random(5) > 0.4
    full = np.broadcast_to(shared, (3, 5))
    for fn in (hydra_attention, lambda *a, **kw: linear_attention(*a, 2, **kw)):
        for causal in (False, True):
            a = fn(th.Tensor(q), th.Tensor(k), th.Tensor(v), causal=causal,
                   key_mask=th.Tensor(shared)).data
            b = fn(th.Tensor(q), th.Tensor(k), th.Tensor(v), causal=causal, key_mask=full).data
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- errors
def _qkv(shape=(2, 5, 4)):
    rng = np.random.default_rng(12)
    return [th.Tensor(rng.standard_normal(shape)) for _ in range(3)]


@pytest.mark.parametrize("fn", [
    lambda q, k, v, m: hydra_attention(q, k, v, key_mask=m),
    lambda q, k, v, m: linear_attention(q, k, v, 2, key_mask=m),
], ids=["hydra", "linear"])
def test_key_mask_errors(fn):
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"key_mask of shape \(2, 4\) does not broadcast"):
        fn(q, k, v, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="key_mask must be a bool array.*float64"):
        fn(q, k, v, np.ones((2, 5)))
    with pytest.raises(ValueError, match="key_mask must be a bool array.*int"):
        fn(q, k, v, np.ones((2, 5), dtype=np.int64))


def test_softmax_mask_errors():
    q, k, v = _qkv()
    with pytest.raises(ValueError,
                       match=r"mask of shape \(5, 4\) does not broadcast to \(2, 5, 5\)"):
        softmax_attention(q, k, v, mask=np.ones((5, 4), bool))
    with pytest.raises(ValueError, match="mask must be a bool array.*float32"):
        softmax_attention(q, k, v, mask=np.ones((5, 5), np.float32))


def test_shape_errors():
    q, k, v = _qkv()
    k_bad = th.Tensor(np.ones((2, 5, 3)))
    v_bad = th.Tensor(np.ones((2, 4, 4)))
    for fn in (hydra_attention, softmax_attention, lambda *a: linear_attention(*a, 1)):
        with pytest.raises(ValueError, match="same feature dimension.*k \\(2, 5, 3\\)"):
            fn(q, k_bad, v)
        with pytest.raises(ValueError, match="k and v must have the same length"):
            fn(q, k, v_bad)
        with pytest.raises(ValueError, match="leading axes"):
            fn(q, th.Tensor(np.ones((3, 5, 4))), v)
    with pytest.raises(ValueError, match="causal attention needs q and k of the same length"):
        hydra_attention(th.Tensor(np.ones((2, 3, 4))), k, v, causal=True)
    with pytest.raises(ValueError, match="q, k and v must have the same feature dimension"):
        hydra_attention(q, k, th.Tensor(np.ones((2, 5, 6))))


def test_num_heads_errors():
    q, k, v = _qkv((2, 5, 6))
    with pytest.raises(ValueError, match="num_heads=4 does not divide the feature dimension 6"):
        linear_attention(q, k, v, 4)
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        linear_attention(q, k, v, 0)
    with pytest.raises(TypeError, match="num_heads must be an int"):
        linear_attention(q, k, v, 2.0)


# ------------------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name", ["hydra", "hydra_causal", "linear", "linear_causal", "softmax"])
def test_float32_in_float32_out(name):
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal((2, 6, 8)) for _ in range(3)]
    key_mask = rng.random((2, 6)) > 0.3
    fns = {
        "hydra": lambda a, b, c: hydra_attention(a, b, c, key_mask=key_mask),
        "hydra_causal": lambda a, b, c: hydra_attention(a, b, c, causal=True, key_mask=key_mask),
        "linear": lambda a, b, c: linear_attention(a, b, c, 2, key_mask=key_mask),
        "linear_causal": lambda a, b, c: linear_attention(a, b, c, 4, causal=True,
                                                          key_mask=key_mask),
        "softmax": lambda a, b, c: softmax_attention(a, b, c, mask=causal_mask(6)),
    }
    fn = fns[name]
    cotangent = rng.standard_normal((2, 6, 8))
    tensors32 = leaves(*arrays, dtype=np.float32)
    out32 = fn(*tensors32)
    out32.backward(cotangent.astype(np.float32))
    assert out32.dtype == np.float32
    assert all(t.grad.dtype == np.float32 for t in tensors32)
    out64, grads64 = forward_and_grads(fn, arrays, cotangent)
    np.testing.assert_allclose(out32.data, out64, rtol=1e-4, atol=1e-5)
    for t, g in zip(tensors32, grads64):
        np.testing.assert_allclose(t.grad, g, rtol=1e-3, atol=1e-4)


def test_only_some_inputs_need_grad():
    rng = np.random.default_rng(14)
    q = th.Tensor(rng.standard_normal((1, 4, 4)), requires_grad=True)
    k, v = th.Tensor(rng.standard_normal((1, 4, 4))), th.Tensor(rng.standard_normal((1, 4, 4)))
    for fn in (hydra_attention, softmax_attention, lambda *a: linear_attention(*a, 2, causal=True)):
        q.grad = None
        fn(q, k, v).backward(np.ones((1, 4, 4)))
        assert q.grad is not None and k.grad is None and v.grad is None


def test_on_device_with_host_masks(device):
    """On the GPU (where available) the fused ops run on CuPy arrays, accept NumPy masks
    (moved to the device once) and match the CPU result."""
    from tinyhydra.engine import backend

    rng = np.random.default_rng(16)
    arrays = [rng.standard_normal((2, 70, 8)) for _ in range(3)]
    key_mask = rng.random((2, 70)) > 0.2
    attn_mask = causal_mask(70) & key_mask[:, None, :]
    cotangent = rng.standard_normal((2, 70, 8))
    fns = [
        lambda a, b, c: hydra_attention(a, b, c, key_mask=key_mask),
        lambda a, b, c: hydra_attention(a, b, c, causal=True, key_mask=key_mask),
        lambda a, b, c: linear_attention(a, b, c, 2, key_mask=key_mask),
        lambda a, b, c: linear_attention(a, b, c, 4, causal=True, key_mask=key_mask),
        lambda a, b, c: softmax_attention(a, b, c, mask=attn_mask),
    ]
    for fn in fns:
        expected, expected_grads = forward_and_grads(fn, arrays, cotangent)
        tensors = [t.to(device) for t in leaves(*arrays)]
        out = fn(*tensors)
        assert out.device == device
        out.backward(backend.to_device(cotangent, device))
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-10)
        for t, g in zip(tensors, expected_grads):
            np.testing.assert_allclose(backend.as_numpy(t.grad), g, atol=1e-10)
