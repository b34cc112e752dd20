"""Modules: parameters with bookkeeping, and the layers of the two encoders.

A :class:`Module` is PyTorch-like: its :class:`Parameter` attributes and its
sub-module attributes (directly, in a list, or in a :class:`ModuleList`) are found
by looking at ``vars(self)``, so there is no registration step. ``module(x)`` calls
``module.forward(x)``.

Every attention module has the same interface,
``forward(x (B, L, D), causal: bool, key_mask (B, L) bool or None) -> (B, L, D)``,
so :class:`TransformerBlock` (shared by SASRec and BERT4Rec) takes the attention
kind as a string: ``"softmax"``, ``"hydra"``, ``"decayed-hydra"`` or ``"linear"``.
"""
from __future__ import annotations

import math

import numpy as np

from . import backend
from . import functional as F
from .attention import causal_mask
from .conv import conv_offsets
from .decayed_hydra import half_life
from .embedding import check_ids
from .tensor import Tensor, no_grad

__all__ = [
    "Parameter", "Module", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout",
    "FeedForward", "DepthwiseConv1d", "MultiHeadSoftmaxAttention", "HydraAttention",
    "DecayedHydraAttention", "LinearAttention", "ATTENTION_KINDS", "make_attention", "TransformerBlock",
]


class Parameter(Tensor):
    """A leaf Tensor that a Module owns and an optimizer updates (always requires grad)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device='{self.device}')"


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _init_rng():
    """The host generator used for initialisation (seeded by ``tinyhydra.manual_seed``)."""
    return backend.default_rng(np)


class Module:
    """Base class of every layer and model (see the module docstring)."""

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------- traversal
    def _named_members(self):
        """(name, value) for each Parameter and sub-module attribute, in attribute order;
        modules in a list or tuple attribute are named ``name.i``."""
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_children(self):
        """(name, module) for each direct sub-module."""
        return ((name, m) for name, m in self._named_members() if isinstance(m, Module))

    def children(self):
        return (child for _, child in self.named_children())

    def modules(self):
        """This module and every module below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) pairs, e.g. ``blocks.0.attention.query.weight``.

        A Parameter reachable twice (a tied weight) is listed once, under its first name.
        """
        seen = set()
        for name, param in self._named_parameters(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def _named_parameters(self, prefix):
        for name, member in self._named_members():
            if isinstance(member, Parameter):
                yield prefix + name, member
            else:
                yield from member._named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [param for _, param in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(param.size for param in self.parameters())

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        """Set the training flag (dropout on) of this module and all below it."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    # ------------------------------------------------------ device and dtype
    @property
    def device(self) -> str:
        """'cpu' or 'gpu': where the parameters live ('cpu' for a module without any)."""
        for param in self.parameters():
            return param.device
        return "cpu"

    def to(self, device: str) -> "Module":
        """Move every parameter (and gradient) to ``device`` IN PLACE; returns ``self``.

        Only ``param.data`` is replaced, so an optimizer built earlier still holds the
        same Parameter objects.
        """
        backend.check_device(device)
        for param in self.parameters():
            param.data = backend.to_device(param.data, device)
            if param.grad is not None:
                param.grad = backend.to_device(param.grad, device)
        return self

    def to_dtype(self, dtype) -> "Module":
        """Cast every parameter to ``dtype`` in place (np.float64 for gradcheck); returns self."""
        for param in self.parameters():
            param.data = param.data.astype(dtype, copy=False)
            param.grad = None
        return self

    # ---------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """name -> host ``numpy.ndarray`` copy of each parameter."""
        return {name: backend.as_numpy(param.data).copy()
                for name, param in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays from ``state`` (name -> array) into the parameters, on their device.

        Shapes must match. With ``strict`` the names must match exactly too; without it
        missing and unexpected names are skipped. Values are cast to each parameter's dtype.
        """
        params = dict(self.named_parameters())
        if strict:
            missing = sorted(set(params) - set(state))
            unexpected = sorted(set(state) - set(params))
            if missing or unexpected:
                raise KeyError(
                    f"load_state_dict into {type(self).__name__}: missing keys {missing}, "
                    f"unexpected keys {unexpected}"
                )
        mismatched = [
            f"{name}: checkpoint {tuple(np.shape(state[name]))} vs model {param.shape}"
            for name, param in params.items()
            if name in state and tuple(np.shape(state[name])) != param.shape
        ]
        if mismatched:
            raise ValueError(
                f"load_state_dict into {type(self).__name__}: shape mismatch for "
                + "; ".join(mismatched)
            )
        for name, param in params.items():
            if name in state:
                xp = backend.get_array_module(param.data)
                # xp.array copies: the module never shares memory with the checkpoint
                param.data = xp.array(backend.as_numpy(state[name]), dtype=param.dtype)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        children = [f"({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = ([self.extra_repr()] if self.extra_repr() else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are named ``0.weight``, ``1.weight``, ..."""

    def __init__(self, modules=()):
        super().__init__()
        self._items = list(modules)
        for item in self._items:
            if not isinstance(item, Module):
                raise TypeError(f"ModuleList holds Modules only, got {type(item).__name__}")

    def _named_members(self):
        return ((str(i), item) for i, item in enumerate(self._items))

    def append(self, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules only, got {type(module).__name__}")
        self._items.append(module)

    def __getitem__(self, index):
        return self._items[index]

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)


# ----------------------------------------------------------------------- layers
class Linear(Module):
    """y = x W^T + b.  x (..., in) -> y (..., out); W (out, in), b (out,).

    PyTorch's default initialisation: W and b uniform in (-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        rng = _init_rng()
        self.weight = Parameter(
            rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32))
        self.bias = (Parameter(rng.uniform(-bound, bound, out_features).astype(np.float32))
                     if bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """Rows of a (num_embeddings, dim) table for integer ids: (...) -> (..., dim).

    Initialised N(0, 0.02^2) (as BERT); the ``padding_idx`` row starts at zero.
    """

    def __init__(self, num_embeddings: int, dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings, self.dim, self.padding_idx = num_embeddings, dim, padding_idx
        weight = _init_rng().normal(0.0, 0.02, (num_embeddings, dim)).astype(np.float32)
        if padding_idx is not None:
            if not 0 <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is not in [0, {num_embeddings})")
            weight[padding_idx] = 0.0
        self.weight = Parameter(weight)

    def prepare_ids(self, ids):
        """``ids`` (NumPy, CuPy, Tensor or lists) as an int array on the weight's device.

        Host ids are range-checked before they move, because on the GPU the check
        would synchronise the device (``F.embedding`` skips it there).
        """
        ids = ids.data if isinstance(ids, Tensor) else ids
        if not backend.is_gpu_array(ids):
            ids = np.asarray(ids)
            check_ids(ids, self.num_embeddings, name=type(self).__name__)
        return backend.to_device(ids, self.weight.device)

    def forward(self, ids) -> Tensor:
        return F.embedding(self.prepare_ids(ids), self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.dim}, padding_idx={self.padding_idx}"


class LayerNorm(Module):
    """Normalise over the last axis (dim), then scale and shift: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim, dtype=np.float32))
        self.bias = Parameter(np.zeros(dim, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` while training; the identity in eval mode."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class FeedForward(Module):
    """Position-wise MLP: Linear(dim, hidden) -> activation -> Dropout -> Linear(hidden, dim).

    x (..., dim) -> (..., dim); ``activation`` is "relu" (SASRec) or "gelu" (BERT4Rec).
    """

    def __init__(self, dim: int, hidden: int, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(_ACTIVATIONS)}")
        self.activation = activation
        self.fc1 = Linear(dim, hidden)
        self.dropout = Dropout(dropout)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(_ACTIVATIONS[self.activation](self.fc1(x))))


class DepthwiseConv1d(Module):
    """Each feature mixes its ``width`` neighbours along the sequence (F.depthwise_conv1d);
    causal taps look back only. Starts as the identity (the offset-0 tap 1, the rest 0)."""

    def __init__(self, dim: int, width: int = 4, causal: bool = True):
        super().__init__()
        if width < 1:
            raise ValueError(f"DepthwiseConv1d: width must be >= 1, got {width}")
        self.width, self.causal = width, causal
        weight = np.zeros((width, dim), dtype=np.float32)
        weight[conv_offsets(width, causal).index(0)] = 1.0
        self.weight = Parameter(weight)
        self.bias = Parameter(np.zeros(dim, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.depthwise_conv1d(x, self.weight, self.bias, causal=self.causal)

    def extra_repr(self):
        return f"width={self.width}, causal={self.causal}"


# -------------------------------------------------------------------- attention
class _ProjectedAttention(Module):
    """What every attention kind shares: Q, K, V projections, an attention function on
    (B, L, D), dropout on its output (the fused kernels have no attention-probability
    dropout, so the attended values are dropped instead), and the output projection.
    ``conv`` > 0 puts a :class:`DepthwiseConv1d` of that width (causal when ``causal``)
    in front of the three projections.

    Subclasses implement ``attend(q, k, v, causal, key_mask) -> (B, L, D)``.
    """

    def __init__(self, dim: int, dropout: float = 0.0, conv: int = 0, causal: bool = True):
        super().__init__()
        self.dim = dim
        self.conv = DepthwiseConv1d(dim, conv, causal) if conv else None
        self.query = Linear(dim, dim)
        self.key = Linear(dim, dim)
        self.value = Linear(dim, dim)
        self.out = Linear(dim, dim)
        self.dropout = Dropout(dropout)

    def attend(self, q, k, v, causal, key_mask):
        raise NotImplementedError

    def forward(self, x: Tensor, causal: bool = False, key_mask=None) -> Tensor:
        """x (B, L, D), key_mask (B, L) bool (True = real token) or None -> (B, L, D)."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (B, L, {self.dim}), got {x.shape}")
        if self.conv is not None:
            x = self.conv(x)  # (B, L, D): local mixing before the projections
        context = self.attend(self.query(x), self.key(x), self.value(x), causal, key_mask)
        return self.out(self.dropout(context))


def _check_heads(dim, num_heads):
    if num_heads < 1 or dim % num_heads:
        raise ValueError(f"num_heads={num_heads} must be >= 1 and divide dim={dim}")


class MultiHeadSoftmaxAttention(_ProjectedAttention):
    """Scaled dot-product attention with ``num_heads`` heads of dim/num_heads features.

    The mask handed to ``F.softmax_attention`` is causal (L, L) AND key_mask (B, 1, 1, L),
    so no query attends to padding; a query with no allowed key (a left-padded position
    under the causal mask) outputs 0.
    """

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, **options):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
        self.num_heads = num_heads

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        x = x.reshape(batch, length, self.num_heads, dim // self.num_heads)  # (B, L, H, D/H)
        return x.transpose(0, 2, 1, 3)  # (B, H, L, D/H)

    def attend(self, q, k, v, causal, key_mask):
        batch, length, dim = q.shape
        mask = None
        if key_mask is not None:
            key_mask = backend.to_device(_raw(key_mask), backend.device_of(q.data))
            mask = key_mask[:, None, None, :]  # (B, 1, 1, L): broadcast over heads and queries
        if causal:
            tril = causal_mask(length, like=q)  # (L, L): query i sees keys t <= i
            mask = tril if mask is None else mask & tril  # (B, 1, L, L)
        context = F.softmax_attention(
            self._split_heads(q), self._split_heads(k), self._split_heads(v), mask=mask
        )  # (B, H, L, D/H)
        return context.transpose(0, 2, 1, 3).reshape(batch, length, dim)  # (B, L, D)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


class HydraAttention(_ProjectedAttention):
    """Hydra attention (Bolya et al. 2022): as many heads as features, linear in L.

    The HydraRec paper's attention: ``F.hydra_attention(q, k, v, causal, key_mask)``.
    """

    def attend(self, q, k, v, causal, key_mask):
        return F.hydra_attention(q, k, v, causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}"


def half_life_decays(dim: int, longest: int) -> np.ndarray:
    """Decays a_f = 2^(-1/h_f) with half-lives h_f spread log-uniformly from 1 to
    ``longest`` positions (dim,), as LRU and RetNet spread theirs over time scales."""
    half_lives = np.exp(np.linspace(0.0, math.log(max(longest, 1)), dim))
    return 2.0 ** (-1.0 / half_lives)


class DecayedHydraAttention(_ProjectedAttention):
    """Hydra attention whose context forgets: ``F.decayed_hydra_attention`` with one decay
    per feature (and per direction when bidirectional), decay = sigmoid(decay_logit).

    The decays start at :func:`half_life_decays` (half-lives 1 .. ``max_len``); with
    ``learn_decay=False`` they stay there (a fixed multi-scale decay, no parameter).
    The layer is built for one direction: ``causal`` here must match the call's.
    """

    def __init__(self, dim: int, dropout: float = 0.0, conv: int = 0, causal: bool = True,
                 max_len: int = 200, learn_decay: bool = True):
        super().__init__(dim, dropout, conv=conv, causal=causal)
        self.causal, self.learn_decay = causal, learn_decay
        decays = half_life_decays(dim, max_len)
        decays = decays if causal else np.stack([decays, decays])  # (D,) or (2, D)
        logits = np.log(decays / (1.0 - decays)).astype(np.float32)
        if learn_decay:
            self.decay_logit = Parameter(logits)
        else:
            self._fixed_decay = decays.astype(np.float32)

    def decay(self) -> Tensor:
        """The decays in use, (D,) causal or (2, D), in [0, 1]."""
        if self.learn_decay:
            return F.sigmoid(self.decay_logit)
        return Tensor(backend.to_device(self._fixed_decay, self.query.weight.device))

    def half_lives(self) -> np.ndarray:
        """log(1/2) / log(a): positions after which a feature's context weight halves."""
        with no_grad():
            return half_life(backend.as_numpy(self.decay().data))

    def attend(self, q, k, v, causal, key_mask):
        if causal != self.causal:
            raise ValueError(f"DecayedHydraAttention was built with causal={self.causal} "
                             f"but called with causal={causal}; build one per direction")
        return F.decayed_hydra_attention(q, k, v, self.decay(), causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}, causal={self.causal}, learn_decay={self.learn_decay}"


class LinearAttention(_ProjectedAttention):
    """Linear attention with the elu+1 feature map (Katharopoulos et al. 2020), per head."""

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.0, **options):
        _check_heads(dim, num_heads)
        super().__init__(dim, dropout, **options)
        self.num_heads = num_heads

    def attend(self, q, k, v, causal, key_mask):
        return F.linear_attention(q, k, v, self.num_heads, causal=causal, key_mask=key_mask)

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}"


ATTENTION_KINDS = ("softmax", "hydra", "decayed-hydra", "linear")


def make_attention(kind: str, dim: int, num_heads: int = 1, dropout: float = 0.0,
                   **options) -> Module:
    """The attention module for ``kind``: "softmax", "hydra", "decayed-hydra" (num_heads
    unused: one head per feature) or "linear". ``options``: ``conv`` and ``causal`` for
    every kind, ``max_len`` and ``learn_decay`` for "decayed-hydra"."""
    if kind == "softmax":
        return MultiHeadSoftmaxAttention(dim, num_heads, dropout, **options)
    if kind == "hydra":
        return HydraAttention(dim, dropout, **options)
    if kind == "decayed-hydra":
        return DecayedHydraAttention(dim, dropout, **options)
    if kind == "linear":
        return LinearAttention(dim, num_heads, dropout, **options)
    raise ValueError(f"unknown attention kind {kind!r}; expected one of {ATTENTION_KINDS}")


class TransformerBlock(Module):
    """One encoder layer, shared by SASRec and BERT4Rec.

    Pre-LN (``norm_first=True``, as SASRec's implementation)::

        x = x + Dropout(Attention(LN(x)))
        x = x + Dropout(FeedForward(LN(x)))

    Post-LN (``norm_first=False``, as the original Transformer)::

        x = LN(x + Dropout(Attention(x)));  x = LN(x + Dropout(FeedForward(x)))

    Then padded positions are zeroed (times the (B, L, 1) float key mask), as SASRec
    does, so whatever they hold never reaches the next block.
    """

    def __init__(self, dim: int, num_heads: int = 1, attention: str = "softmax",
                 hidden: int | None = None, dropout: float = 0.0, activation: str = "relu",
                 norm_first: bool = True, attention_options: dict | None = None):
        super().__init__()
        self.norm_first = norm_first
        self.attention = make_attention(attention, dim, num_heads, dropout,
                                        **(attention_options or {}))
        self.attention_norm = LayerNorm(dim)
        self.attention_dropout = Dropout(dropout)
        self.feed_forward = FeedForward(dim, hidden or dim, activation, dropout)
        self.feed_forward_norm = LayerNorm(dim)
        self.feed_forward_dropout = Dropout(dropout)

    def forward(self, x: Tensor, causal: bool = False, key_mask=None) -> Tensor:
        """x (B, L, D), key_mask (B, L) bool (True = real token) or None -> (B, L, D)."""
        if self.norm_first:
            x = x + self.attention_dropout(
                self.attention(self.attention_norm(x), causal=causal, key_mask=key_mask))
            x = x + self.feed_forward_dropout(self.feed_forward(self.feed_forward_norm(x)))
        else:
            x = self.attention_norm(
                x + self.attention_dropout(self.attention(x, causal=causal, key_mask=key_mask)))
            x = self.feed_forward_norm(x + self.feed_forward_dropout(self.feed_forward(x)))
        if key_mask is not None:
            keep = backend.to_device(_raw(key_mask), x.device)[:, :, None].astype(x.dtype)
            x = x * keep  # (B, L, D) * (B, L, 1)
        return x
