"""Decayed Hydra attention and its building block, the decayed prefix sum.

The fused op is checked against its quadratic twin (explicit (D, L, L) decay matrices)
to 1e-10 in float64, forward and all four gradients under a random cotangent, and
against central differences; then the properties the maths promises: decay 1 is plain
Hydra, later decay 0 is the causal form, causality, masked keys count for nothing (not
even a NaN), and long float32 sequences stay finite in O(L D) memory.
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra import nn
from tinyhydra.attention.reference import decayed_hydra_attention_reference
from tinyhydra.engine import backend

from .strategies import qkv_case

EXAMPLES = settings(deadline=None, max_examples=25)


def leaves(*arrays, dtype=np.float64):
    return [th.Tensor(np.array(a, dtype=dtype), requires_grad=True) for a in arrays]


@st.composite
def decays(draw, shape):
    """Decays in [0, 1] with the edges 0 and 1 drawn often."""
    values = st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)
    return np.array(draw(st.lists(values, min_size=int(np.prod(shape)),
                                  max_size=int(np.prod(shape))))).reshape(shape)


# ------------------------------------------------------------- against the reference
@EXAMPLES
@given(case=qkv_case(), causal=st.booleans(), data=st.data())
def test_matches_reference_forward_and_gradients(case, causal, data):
    q, k, v, key_mask = case
    decay = data.draw(decays((q.shape[-1],) if causal else (2, q.shape[-1])))
    arrays = (q, k, v, decay)
    fused, reference = leaves(*arrays), leaves(*arrays)
    out_f = F.decayed_hydra_attention(*fused, causal=causal, key_mask=key_mask)
    out_r = decayed_hydra_attention_reference(*reference, causal=causal, key_mask=key_mask)
    cotangent = np.random.default_rng(0).standard_normal(out_f.shape)
    out_f.backward(cotangent)
    out_r.backward(cotangent)
    np.testing.assert_allclose(out_f.data, out_r.data, rtol=0, atol=1e-10)
    for name, a, b in zip(["q", "k", "v", "decay"], fused, reference):
        assert a.grad.shape == b.grad.shape and np.all(np.isfinite(a.grad)), name
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-9, err_msg=f"d{name}")


@settings(deadline=None, max_examples=10)
@given(case=qkv_case(max_len=6, max_dim=5), causal=st.booleans(), seed=st.integers(0, 2**16))
def test_gradcheck_all_four_inputs(case, causal, seed):
    q, k, v, key_mask = case
    shape = (q.shape[-1],) if causal else (2, q.shape[-1])
    decay = np.random.default_rng(seed).uniform(0.05, 0.95, shape)  # +-eps stays in [0, 1]
    th.gradcheck(lambda *x: F.decayed_hydra_attention(*x, causal=causal, key_mask=key_mask),
                 leaves(q, k, v, decay))


# ---------------------------------------------------------------------- properties
@EXAMPLES
@given(case=qkv_case())
def test_decay_one_is_plain_hydra_and_later_decay_zero_is_causal(case):
    q, k, v, key_mask = case
    dim = q.shape[-1]
    for causal in (False, True):
        decay = np.ones(dim) if causal else np.ones((2, dim))
        decayed = F.decayed_hydra_attention(q, k, v, decay, causal=causal, key_mask=key_mask)
        plain = F.hydra_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v), causal=causal,
                                  key_mask=key_mask)
        np.testing.assert_allclose(decayed.data, plain.data, rtol=0, atol=1e-12)
    earlier = np.random.default_rng(0).uniform(0, 1, dim)
    both = F.decayed_hydra_attention(q, k, v, np.stack([earlier, np.zeros(dim)]),
                                     key_mask=key_mask)
    causal = F.decayed_hydra_attention(q, k, v, earlier, causal=True, key_mask=key_mask)
    np.testing.assert_allclose(both.data, causal.data, rtol=0, atol=1e-12)


@EXAMPLES
@given(case=qkv_case(max_len=9), cut=st.integers(0, 8))
def test_causal_output_ignores_later_positions(case, cut):
    q, k, v, key_mask = case
    cut = min(cut, q.shape[1] - 1)
    decay = np.random.default_rng(1).uniform(0, 1, q.shape[-1])
    changed = [x.copy() for x in (q, k, v)]
    for x in changed:
        x[:, cut + 1:] += 5.0
    out = F.decayed_hydra_attention(q, k, v, decay, causal=True, key_mask=key_mask).data
    out_changed = F.decayed_hydra_attention(*changed, decay, causal=True, key_mask=key_mask).data
    np.testing.assert_allclose(out[:, :cut + 1], out_changed[:, :cut + 1], rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # phi(inf) in masked rows
@EXAMPLES
@given(case=qkv_case(), causal=st.booleans(), poison=st.sampled_from([np.nan, np.inf, 1e6]))
def test_masked_keys_change_nothing_not_even_nan(case, causal, poison):
    """Whatever masked keys and values hold (NaN, inf, huge), output and gradients are those
    of the clean input: masked keys are selected away, not multiplied by 0."""
    q, k, v, key_mask = case
    if key_mask is None:
        key_mask = np.arange(q.shape[1]) % 2 == 0
        key_mask = np.broadcast_to(key_mask, q.shape[:2]).copy()
    dim = q.shape[-1]
    decay = np.full((dim,) if causal else (2, dim), 0.7)
    hidden = ~key_mask[..., None]
    poisoned = [np.where(hidden, poison, x) for x in (k, v)]
    cotangent = np.random.default_rng(2).standard_normal(q.shape)
    results = []
    for keys, values in ((k, v), poisoned):
        tensors = leaves(q, keys, values, decay)
        out = F.decayed_hydra_attention(*tensors, causal=causal, key_mask=key_mask)
        out.backward(cotangent)
        results.append((out.data, [t.grad for t in tensors]))
    (clean, clean_grads), (dirty, dirty_grads) = results
    np.testing.assert_allclose(dirty, clean, rtol=0, atol=1e-12)
    for name, a, b in zip("qkvd", dirty_grads, clean_grads):
        a, b = (np.where(hidden, 0, g) if name in "kv" else g for g in (a, b))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)
    for g in dirty_grads[1:3]:  # masked keys and values get exactly zero gradient
        assert not np.any(np.where(hidden, g, 0))


@pytest.mark.parametrize("causal", [True, False])
def test_long_float32_sequences_stay_finite_in_linear_memory(causal):
    """L = 8192, decays from 1e-3 to 1: finite outputs and gradients, no L x L array."""
    length, dim = 8192, 16
    rng = np.random.default_rng(4)
    q, k, v = leaves(*(rng.standard_normal((1, length, dim)) for _ in range(3)), dtype=np.float32)
    decay = np.geomspace(1e-3, 1.0, dim)
    decay = leaves(decay if causal else np.stack([decay, decay[::-1]]), dtype=np.float32)[0]
    key_mask = rng.random((1, length)) > 0.1
    tracemalloc.start()
    try:
        out = F.decayed_hydra_attention(q, k, v, decay, causal=causal, key_mask=key_mask)
        out.backward(rng.standard_normal(out.shape).astype(np.float32))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < length * length * 4 / 8, f"peak {peak / 2**20:.1f} MiB"
    assert peak < 96 * length * dim * 4  # O(L D): a few dozen (L, D) arrays
    for x in (out.data, q.grad, k.grad, v.grad, decay.grad):
        assert x.dtype == np.float32 and np.all(np.isfinite(x))


def test_arguments_are_checked():
    x = th.Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"decay must have shape \(4,\)"):
        F.decayed_hydra_attention(x, x, x, np.ones((2, 4)), causal=True)
    with pytest.raises(ValueError, match=r"decay must have shape \(2, 4\)"):
        F.decayed_hydra_attention(x, x, x, np.ones(4))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        F.decayed_hydra_attention(x, x, x, np.full(4, 1.5), causal=True)


def test_on_an_accelerator_matches_the_cpu(accelerator, rng):
    q, k, v = (rng.standard_normal((2, 40, 8)) for _ in range(3))
    decay = rng.uniform(0, 1, (2, 8))
    key_mask = rng.random((2, 40)) > 0.2
    cotangent = rng.standard_normal((2, 40, 8))
    results = []
    for device in ("cpu", accelerator):
        tensors = [t.to(device) for t in leaves(q, k, v, decay)]
        out = F.decayed_hydra_attention(*tensors, key_mask=key_mask)
        out.backward(backend.to_device(cotangent, device))
        results.append([backend.as_numpy(x) for x in (out.data, *(t.grad for t in tensors))])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------- the layer's decays
def test_layer_starts_with_half_lives_from_one_to_max_len():
    layer = nn.DecayedHydraAttention(8, causal=False, max_len=200)
    half_lives = layer.half_lives()
    assert half_lives.shape == (2, 8)
    np.testing.assert_allclose(half_lives[:, 0], 1.0, rtol=1e-5)
    np.testing.assert_allclose(half_lives[:, -1], 200.0, rtol=1e-3)
    assert np.all(np.diff(half_lives, axis=1) > 0)
    fixed = nn.DecayedHydraAttention(8, causal=True, max_len=50, learn_decay=False)
    assert fixed.num_parameters() == layer.num_parameters() - 16
    np.testing.assert_allclose(fixed.half_lives()[[0, -1]], [1.0, 50.0], rtol=1e-3)


def test_plot_half_lives_reads_a_run_folder(tmp_path):
    """scripts/plot_half_lives.py on a run folder holding a fresh model's best.npz: the
    half-lives it reports are the initial spread, per layer and direction."""
    from tinyhydra import models
    from tinyhydra.engine import checkpoint

    from .scripts import load_script

    model = models.DecayedHydraRecBi(20, max_len=30, dim=6, num_layers=2)
    run = tmp_path / "run"
    run.mkdir()
    checkpoint.save(model.state_dict(), run / "best.npz")
    found = load_script("scripts", "plot_half_lives").main([str(run), "--out", str(tmp_path / "h.png")])
    assert (tmp_path / "h.png").stat().st_size > 0
    layers = found[run]
    assert sorted(layers) == ["blocks.0.attention.decay_logit", "blocks.1.attention.decay_logit"]
    for values in layers.values():
        np.testing.assert_allclose(values, model.blocks[0].attention.half_lives(), rtol=1e-6)
