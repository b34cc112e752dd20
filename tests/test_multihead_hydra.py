"""Multi-head cosine linear attention (``F.hydra_attention(..., num_heads=H)``), Hydra at H = D.

The fused multi-head op against its quadratic twin in tinyhydra.attention.reference (to 1e-10 in
float64, forward and gradients under a random cotangent, both normalisations, masks),
against central differences, causality and masked keys by perturbation, float32 at a long
L against float64, and ``num_heads=None`` against the values the code computed before
it had heads (bit for bit).
"""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra import models, nn
from tinyhydra.attention.hydra import FusedHydraAttention, FusedMultiHeadHydraAttention
from tinyhydra.attention.reference import hydra_attention_reference
from trainer import config as config_module

from .hydra_main_values import PARTS, cases, hydra_values
from .strategies import heads_for, qkv_case
from .test_attention import assert_same_forward_and_grads, forward_and_grads, leaves

EXAMPLES = settings(deadline=None, max_examples=25)
FEW = settings(deadline=None, max_examples=10)
NORMALIZE = st.sampled_from(["global", "per_head"])


def fused(num_heads, causal, key_mask, normalize="global"):
    return lambda a, b, c: F.hydra_attention(a, b, c, causal=causal, key_mask=key_mask,
                                             num_heads=num_heads, normalize=normalize)


def general_form(num_heads, causal, key_mask, normalize="global"):
    """The multi-head Function itself, also at H = D (which hydra_attention sends to Hydra)."""
    return lambda a, b, c: FusedMultiHeadHydraAttention.apply(
        a, b, c, num_heads=num_heads, causal=causal, key_mask=key_mask, normalize=normalize)


def reference(num_heads, causal, key_mask, normalize="global"):
    return lambda a, b, c: hydra_attention_reference(a, b, c, causal=causal, key_mask=key_mask,
                                                     num_heads=num_heads, normalize=normalize)


# ---------------------------------------------------------------- H = D is Hydra, unchanged
@pytest.mark.parametrize("case", list(cases()), ids=lambda case: case[0])
def test_num_heads_none_is_todays_hydra_bit_for_bit(case):
    name, *arrays = case
    stored = np.load(Path(__file__).parent / "data" / "hydra_attention_main.npz")
    for part, array in zip(PARTS, hydra_values(*arrays)):
        assert array.dtype == stored[f"{name}_{part}"].dtype
        assert np.array_equal(array, stored[f"{name}_{part}"]), part
    # H = D given explicitly takes the same elementwise path
    dim = arrays[0].shape[-1]
    for part, array in zip(PARTS, hydra_values(*arrays, num_heads=dim)):
        assert np.array_equal(array, stored[f"{name}_{part}"]), part


@EXAMPLES
@given(case=qkv_case(), causal=st.booleans())
def test_general_form_at_h_equals_d_is_hydra(case, causal):
    q, k, v, key_mask = case
    dim = q.shape[-1]
    assert_same_forward_and_grads(
        general_form(dim, causal, key_mask),
        lambda a, b, c: FusedHydraAttention.apply(a, b, c, causal=causal, key_mask=key_mask),
        (q, k, v))


# --------------------------------------------------------------------- fused vs quadratic
@EXAMPLES
@given(case=qkv_case(max_len=9), causal=st.booleans(), normalize=NORMALIZE, data=st.data())
def test_multihead_matches_reference(case, causal, normalize, data):
    q, k, v, key_mask = case
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    assert_same_forward_and_grads(fused(num_heads, causal, key_mask, normalize),
                                  reference(num_heads, causal, key_mask, normalize), (q, k, v))


@FEW
@given(case=qkv_case(max_len=5, max_dim=6), causal=st.booleans(), data=st.data())
def test_multihead_gradcheck(case, causal, data):
    q, k, v, key_mask = case
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    assert th.gradcheck(fused(num_heads, causal, key_mask), leaves(q, k, v))


@pytest.mark.parametrize("length", [16, 17, 40])  # one chunk, one row over, several chunks
def test_causal_chunks_match_reference(length):
    rng = np.random.default_rng(length)
    q, k, v = (rng.standard_normal((2, length, 6)) for _ in range(3))
    key_mask = rng.random((2, length)) > 0.3
    for num_heads in (1, 2, 3):
        assert_same_forward_and_grads(fused(num_heads, True, key_mask),
                                      reference(num_heads, True, key_mask), (q, k, v))


def test_cross_attention_lengths():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 3, 4))
    k, v = rng.standard_normal((2, 6, 4)), rng.standard_normal((2, 6, 4))
    mask = rng.random((2, 6)) > 0.3
    assert_same_forward_and_grads(fused(2, False, mask), reference(2, False, mask), (q, k, v))


def test_one_head_is_cosine_linear_attention_written_in_numpy():
    """H = 1: out_i = sum_{t<=i} cos(q_i, k_t) v_t."""
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 5, 4)) for _ in range(3))
    qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
    kn = k / np.linalg.norm(k, axis=-1, keepdims=True)
    expected = np.tril(qn[0] @ kn[0].T) @ v[0]
    out = F.hydra_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v), causal=True, num_heads=1)
    np.testing.assert_allclose(out.data[0], expected, atol=1e-12)


def test_global_and_per_head_differ_below_d_and_agree_at_one_head():
    rng = np.random.default_rng(4)
    q, k, v = (th.Tensor(rng.standard_normal((1, 6, 4))) for _ in range(3))
    for heads, same in ((1, True), (2, False)):
        a = F.hydra_attention(q, k, v, num_heads=heads, normalize="global").data
        b = F.hydra_attention(q, k, v, num_heads=heads, normalize="per_head").data
        assert np.allclose(a, b, atol=1e-12) == same


# ------------------------------------------------------------- causality and masked keys
@EXAMPLES
@given(case=qkv_case(), normalize=NORMALIZE, data=st.data())
def test_causal_outputs_ignore_the_future(case, normalize, data):
    q, k, v, _ = case
    position = data.draw(st.integers(0, q.shape[1] - 1), label="i")
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    rng = np.random.default_rng(position)
    later = slice(position + 1, None)
    perturbed = [a.copy() for a in (q, k, v)]
    for array in perturbed:
        array[:, later] += rng.standard_normal(array[:, later].shape)
    fn = fused(num_heads, True, None, normalize)
    before = fn(*map(th.Tensor, (q, k, v))).data
    after = fn(*map(th.Tensor, perturbed)).data
    np.testing.assert_allclose(after[:, :position + 1], before[:, :position + 1], rtol=0, atol=1e-12)
    if position + 1 < q.shape[1]:
        assert not np.allclose(after[:, later], before[:, later])


@EXAMPLES
@given(case=qkv_case(), causal=st.booleans(), data=st.data())
def test_masked_keys_change_nothing_even_nan(case, causal, data):
    q, k, v, key_mask = case
    key_mask = np.ones(q.shape[:2], bool) if key_mask is None else key_mask.copy()
    key_mask[data.draw(st.integers(0, q.shape[0] - 1)), data.draw(st.integers(0, q.shape[1] - 1))] = False
    num_heads = data.draw(heads_for(q.shape[-1]), label="num_heads")
    fn = fused(num_heads, causal, key_mask)
    k_bad, v_bad = k.copy(), v.copy()
    k_bad[~key_mask], v_bad[~key_mask] = np.nan, np.inf
    cotangent = np.random.default_rng(17).standard_normal(q.shape)
    out, grads = forward_and_grads(fn, (q, k, v), cotangent)
    out_bad, grads_bad = forward_and_grads(fn, (q, k_bad, v_bad), cotangent)
    np.testing.assert_array_equal(out_bad, out)
    for g, g_bad in zip(grads, grads_bad):
        np.testing.assert_array_equal(g_bad, g)
    for g_bad in grads_bad[1:]:
        assert np.all(g_bad[~key_mask] == 0)


# -------------------------------------------------------------------- float32 at long L
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("num_heads", [1, 4])
def test_float32_at_long_length_matches_float64(causal, num_heads):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((2, 2000, 16)) for _ in range(3)]
    key_mask = rng.random((2, 2000)) > 0.1
    cotangent = rng.standard_normal((2, 2000, 16))
    fn = fused(num_heads, causal, key_mask)
    tensors32 = leaves(*arrays, dtype=np.float32)
    out32 = fn(*tensors32)
    out32.backward(cotangent.astype(np.float32))
    assert out32.dtype == np.float32 and all(t.grad.dtype == np.float32 for t in tensors32)
    out64, grads64 = forward_and_grads(fn, arrays, cotangent)
    scale = np.abs(out64).max()
    np.testing.assert_allclose(out32.data, out64, rtol=0, atol=1e-5 * scale)
    for t, g in zip(tensors32, grads64):
        np.testing.assert_allclose(t.grad, g, rtol=0, atol=1e-4 * np.abs(g).max())


# --------------------------------------------------------------------------------- errors
def test_argument_errors():
    q, k, v = (th.Tensor(np.ones((2, 5, 6))) for _ in range(3))
    with pytest.raises(ValueError, match="num_heads=4 does not divide the feature dimension 6"):
        F.hydra_attention(q, k, v, num_heads=4)
    with pytest.raises(ValueError, match="num_heads must be >= 1"):
        F.hydra_attention(q, k, v, num_heads=0)
    with pytest.raises(TypeError, match="num_heads must be an int"):
        F.hydra_attention(q, k, v, num_heads=2.0)
    with pytest.raises(ValueError, match="normalize must be one of"):
        F.hydra_attention(q, k, v, num_heads=2, normalize="head")


# ------------------------------------------------------------------ layers, models, flags
def test_layer_and_models_take_num_heads():
    layer = nn.HydraAttention(8, num_heads=2)
    assert layer.num_heads == 2 and "num_heads=2" in repr(layer)
    assert nn.HydraAttention(8).num_heads is None
    with pytest.raises(ValueError, match="divide dim=8"):
        nn.HydraAttention(8, num_heads=3)
    for cls in (models.HydraRecUni, models.HydraRecBi):
        model = cls(10, max_len=4, dim=8, num_layers=1, num_heads=4)
        assert model.blocks[0].attention.num_heads == 4
        assert cls(10, max_len=4, dim=8, num_layers=1).blocks[0].attention.num_heads is None


def test_layer_is_the_op_on_its_projections():
    rng = np.random.default_rng(6)
    layer = nn.HydraAttention(6, num_heads=3).to_dtype(np.float64)
    x = th.Tensor(rng.standard_normal((2, 5, 6)))
    mask = rng.random((2, 5)) > 0.3
    q, k, v = (lin(x) for lin in (layer.query, layer.key, layer.value))
    expected = layer.out(hydra_attention_reference(q, k, v, causal=True, key_mask=mask, num_heads=3))
    np.testing.assert_allclose(layer(x, causal=True, key_mask=mask).data, expected.data, atol=1e-12)


@pytest.mark.parametrize("model, heads, expected", [
    ("hydrarec-uni", 5, 5), ("hydrarec-uni", 0, None), ("hydrarec-bi", 8, 8), ("hydrarec-bi", 0, None),
])
def test_heads_flag_reaches_the_hydra_models(model, heads, expected):
    config = config_module.validate(config_module.Config(model=model, heads=heads))
    kwargs = config_module.model_kwargs(config)
    assert kwargs.get("num_heads") == expected
    built = models.build_model(model, 10, **{**kwargs, "num_layers": 1, "max_len": 4})
    assert built.blocks[0].attention.num_heads == expected
