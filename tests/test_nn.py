"""Modules (bookkeeping, layers, attention, the transformer block); the optimizers are in test_optim.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyhydra as th
from tinyhydra import nn

from .strategies import bool_masks

KINDS = nn.ATTENTION_KINDS
# (kind, causal) for every direction each registered kind supports
KIND_DIRECTIONS = [pytest.param(kind, direction == "causal", id=f"{kind}-{direction}")
                   for kind, entry in KINDS.items() for direction in entry.directions]
CAUSAL_KINDS = [kind for kind, entry in KINDS.items() if "causal" in entry.directions]


def supported_causal(kind):
    """A direction the kind supports, causal where it can: what the block tests run."""
    return "causal" in KINDS[kind].directions


def float64_input(rng, *shape):
    return th.Tensor(rng.standard_normal(shape), requires_grad=True)


class Tiny(nn.Module):
    """A module with a parameter, a sub-module, a ModuleList and a plain list of modules."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.proj = nn.Linear(3, 2)
        self.stack = nn.ModuleList([nn.LayerNorm(2), nn.Dropout(0.5)])
        self.heads = [nn.Linear(2, 1, bias=False)]
        self.tied = self.proj.weight  # reachable twice: listed once

    def forward(self, x):
        return self.heads[0](self.stack[1](self.stack[0](self.proj(x * self.scale))))


# ------------------------------------------------------------------ bookkeeping
def test_named_parameters_are_dotted_and_unique():
    names = [name for name, _ in Tiny().named_parameters()]
    assert names == ["scale", "proj.weight", "proj.bias", "stack.0.weight", "stack.0.bias",
                     "heads.0.weight"]
    module = Tiny()
    assert module.num_parameters() == 3 + 6 + 2 + 2 + 2 + 2
    assert [type(c).__name__ for c in module.children()] == ["Linear", "ModuleList", "Linear"]
    assert len(list(module.modules())) == 6


def test_train_eval_reach_every_module_and_toggle_dropout(rng):
    module = Tiny()
    x = th.Tensor(rng.standard_normal((64, 3)).astype(np.float32))
    assert module.eval() is module
    assert not any(m.training for m in module.modules())
    np.testing.assert_array_equal(module(x).data, module(x).data)  # deterministic
    module.train()
    assert all(m.training for m in module.modules())
    assert not np.array_equal(module(x).data, module(x).data)  # dropout draws masks


def test_zero_grad_clears_every_parameter(rng):
    module = Tiny()
    out = module(th.Tensor(rng.standard_normal((4, 3)).astype(np.float32)))
    out.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert all(p.grad is not None for p in module.parameters())
    module.zero_grad()
    assert all(p.grad is None for p in module.parameters())


def test_state_dict_round_trip_gives_identical_outputs(rng):
    th.manual_seed(1)
    source = nn.TransformerBlock(8, num_heads=2, hidden=16)
    th.manual_seed(2)
    target = nn.TransformerBlock(8, num_heads=2, hidden=16)
    x = th.Tensor(rng.standard_normal((2, 5, 8)).astype(np.float32))
    state = source.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not np.array_equal(source(x).data, target(x).data)
    target.load_state_dict(state)
    np.testing.assert_array_equal(source(x).data, target(x).data)
    # copies both ways: editing the checkpoint or the source leaves the target alone
    before = target(x).data.copy()
    state["attention.query.weight"] += 1.0
    source.attention.query.weight.data += 1.0
    np.testing.assert_array_equal(target(x).data, before)


def test_load_state_dict_errors_name_the_problem():
    module = nn.Linear(3, 2)
    state = module.state_dict()
    with pytest.raises(ValueError, match=r"weight: checkpoint \(3, 3\) vs model \(2, 3\)"):
        module.load_state_dict({**state, "weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(KeyError, match="missing keys \\['bias'\\]"):
        module.load_state_dict({"weight": state["weight"]})
    with pytest.raises(KeyError, match="unexpected keys \\['extra'\\]"):
        module.load_state_dict({**state, "extra": np.zeros(1)})
    module.load_state_dict({"weight": np.zeros((2, 3))}, strict=False)  # partial, cast to float32
    assert module.weight.dtype == np.float32 and not module.weight.data.any()


def test_to_moves_in_place_and_to_dtype_casts(device):
    module = Tiny()
    params = module.parameters()
    assert module.to(device) is module and module.device == device
    assert all(a is b and a.device == device for a, b in zip(params, module.parameters()))
    module.to_dtype(np.float64)
    assert all(p.dtype == np.float64 for p in module.parameters())
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        module.to("tpu")


def test_module_without_forward_and_bad_modulelist():
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        nn.Module()()
    with pytest.raises(TypeError, match="Modules only"):
        nn.ModuleList([nn.Linear(1, 1), 3])


# ------------------------------------------------------------------------ layers
def test_linear_and_embedding_initialisation():
    th.manual_seed(0)
    linear = nn.Linear(16, 4)
    assert linear.weight.shape == (4, 16) and linear.bias.shape == (4,)
    assert linear.weight.dtype == np.float32
    assert np.abs(linear.weight.data).max() <= 0.25 and np.abs(linear.bias.data).max() <= 0.25
    embedding = nn.Embedding(50, 8, padding_idx=0)
    assert not embedding.weight.data[0].any() and embedding.weight.data[1:].std() < 0.05
    th.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(16, 4).weight.data, linear.weight.data)  # seeded


def test_layer_gradients_match_finite_differences(rng):
    linear = nn.Linear(4, 3).to_dtype(np.float64)
    th.gradcheck(lambda x, w, b: linear(x),
                 [float64_input(rng, 2, 5, 4), linear.weight, linear.bias])
    norm = nn.LayerNorm(4).to_dtype(np.float64)
    norm.weight.data = rng.standard_normal(4)  # away from the identity
    th.gradcheck(lambda x, w, b: norm(x), [float64_input(rng, 3, 4), norm.weight, norm.bias])
    embedding = nn.Embedding(6, 3).to_dtype(np.float64)
    ids = np.array([[1, 2, 1], [5, 0, 1]])  # repeated ids accumulate
    th.gradcheck(lambda w: embedding(ids), [embedding.weight])
    ffn = nn.FeedForward(3, 5, activation="gelu").to_dtype(np.float64)
    th.gradcheck(lambda x, w: ffn(x), [float64_input(rng, 2, 3), ffn.fc1.weight])


def test_embedding_accepts_lists_and_rejects_bad_ids():
    embedding = nn.Embedding(5, 2)
    assert embedding([[0, 4]]).shape == (1, 2, 2)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        embedding(np.array([1, 5]))
    with pytest.raises(TypeError, match="integer"):
        embedding(np.array([1.0]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)


def test_dropout_and_feed_forward_validate_arguments():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        nn.FeedForward(4, 8, activation="tanh")


# ---------------------------------------------------------------------- attention
def attention_module(kind, dim=8, num_heads=2, causal=True, conv=0):
    return nn.make_attention(kind, dim, num_heads, causal=causal, conv=conv).to_dtype(np.float64)


def test_make_attention_kinds_and_errors():
    assert isinstance(nn.make_attention("softmax", 8, 2), nn.MultiHeadSoftmaxAttention)
    assert isinstance(nn.make_attention("hydra", 8, 2), nn.HydraAttention)
    assert isinstance(nn.make_attention("linear", 8, 2), nn.LinearAttention)
    with pytest.raises(ValueError, match="unknown attention kind 'sparse'"):
        nn.make_attention("sparse", 8, 2)
    with pytest.raises(ValueError, match="divide dim=8"):
        nn.make_attention("softmax", 8, 3)
    with pytest.raises(ValueError, match=r"\(B, L, 8\)"):
        nn.make_attention("hydra", 8)(th.Tensor(np.zeros((2, 4), np.float32)))


@pytest.mark.parametrize(("kind", "causal"), KIND_DIRECTIONS)
@pytest.mark.parametrize("conv", [0, 2])
def test_attention_module_gradients(kind, causal, conv, rng):
    """Every parameter of the layer (projections, the convolution, a learned decay) and the input."""
    module = attention_module(kind, dim=4, num_heads=2, causal=causal, conv=conv)
    key_mask = np.array([[False, True, True], [True, True, True]])
    th.gradcheck(lambda x, *parameters: module(x, causal=causal, key_mask=key_mask),
                 [float64_input(rng, 2, 3, 4), *module.parameters()])


@pytest.mark.parametrize(("kind", "causal"), KIND_DIRECTIONS)
@given(data=st.data())
def test_attention_ignores_masked_positions(kind, causal, data):
    """Whatever the padded (key_mask False) positions hold, the real ones see the same output."""
    batch, length = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6))
    key_mask = data.draw(bool_masks((batch, length)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    module = attention_module(kind, causal=causal)
    x = rng.standard_normal((batch, length, 8))
    noisy = np.where(key_mask[..., None], x, 100 * rng.standard_normal(x.shape))
    out = module(th.Tensor(x), causal=causal, key_mask=key_mask).data
    out_noisy = module(th.Tensor(noisy), causal=causal, key_mask=key_mask).data
    np.testing.assert_allclose(out[key_mask], out_noisy[key_mask], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", CAUSAL_KINDS)
@pytest.mark.parametrize("conv", [0, 4])
def test_causal_attention_never_looks_ahead(kind, conv, rng):
    module = attention_module(kind, causal=True, conv=conv)
    x = rng.standard_normal((2, 6, 8))
    changed = x.copy()
    changed[:, 4:] += rng.standard_normal((2, 2, 8))
    out, out_changed = (module(th.Tensor(a), causal=True).data for a in (x, changed))
    np.testing.assert_allclose(out[:, :4], out_changed[:, :4], rtol=1e-10, atol=1e-12)
    assert not np.allclose(out[:, 4:], out_changed[:, 4:])
    if "bidirectional" not in KINDS[kind].directions:
        return
    # the bidirectional form does look ahead
    module = attention_module(kind, causal=False, conv=conv)
    out, out_changed = (module(th.Tensor(a), causal=False).data for a in (x, changed))
    assert not np.allclose(out[:, :4], out_changed[:, :4])


def test_softmax_attention_module_matches_manual_heads(rng):
    """Split heads, masked softmax per head, merge: checked against plain NumPy."""
    module = attention_module("softmax", dim=4, num_heads=2)
    x = rng.standard_normal((1, 3, 4))
    key_mask = np.array([[False, True, True]])
    out = module(th.Tensor(x), causal=True, key_mask=key_mask).data

    def proj(linear):
        return x @ linear.weight.data.T + linear.bias.data

    q, k, v = (proj(m).reshape(3, 2, 2).transpose(1, 0, 2)  # (L, H, D/H) -> (H, L, D/H)
               for m in (module.query, module.key, module.value))
    allowed = np.tril(np.ones((3, 3), bool)) & key_mask[0]
    scores = np.where(allowed, q @ k.transpose(0, 2, 1) / np.sqrt(2), -np.inf)  # (H, L, L)
    with np.errstate(invalid="ignore"):
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs = np.nan_to_num(probs / probs.sum(-1, keepdims=True))  # row 0 sees nothing: 0
    context = (probs @ v).transpose(1, 0, 2).reshape(3, 4)
    expected = context @ module.out.weight.data.T + module.out.bias.data
    np.testing.assert_allclose(out[0], expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- the block
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block_zeroes_padding_and_keeps_dtype(kind, norm_first, rng):
    block = nn.TransformerBlock(8, num_heads=2, attention=kind, hidden=16, dropout=0.1, activation="gelu",
                                norm_first=norm_first, attention_options={"causal": supported_causal(kind)})
    x = th.Tensor(rng.standard_normal((2, 5, 8)).astype(np.float32), requires_grad=True)
    key_mask = np.array([[False, False, True, True, True], [True] * 5])
    out = block(x, causal=supported_causal(kind), key_mask=key_mask)
    assert out.shape == (2, 5, 8) and out.dtype == np.float32
    assert not out.data[0, :2].any() and out.data[key_mask].any()
    out.backward(rng.standard_normal(out.shape).astype(np.float32))
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in block.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_transformer_block_gradients(kind, rng):
    block = nn.TransformerBlock(4, num_heads=2, attention=kind, hidden=6,
                                attention_options={"causal": supported_causal(kind)}).to_dtype(np.float64)
    key_mask = np.array([[False, True, True]])
    th.gradcheck(lambda x, w: block(x, causal=supported_causal(kind), key_mask=key_mask),
                 [float64_input(rng, 1, 3, 4), block.feed_forward.fc1.weight])
