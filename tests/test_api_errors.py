"""Every mistake a user can make with the Python API from a notebook, one row each.

A row is a call and what it must give: either an exception of one type whose one-line
message contains the given words (they name the user's argument and say what was
expected), or a correct result, checked against NumPy. The rows are grouped by where
the mistake is made: the engine, the ``F.*`` functions, layers and models, optimizers
and modules, gradcheck. ``tests/test_cli_errors.py`` is the same table for the script.
"""
import operator
from types import SimpleNamespace

import numpy as np
import pytest

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra import models, nn, optim
from tinyhydra.attention import scan


class Raises:
    def __init__(self, error, *words):
        self.error, self.words = error, words


class Gives:
    """The row's call returns a value equal (allclose) to ``expected``."""

    def __init__(self, expected):
        self.expected = expected


ROWS = []


def row(category, name, expect):
    """Register the decorated zero-argument call as a row."""
    def register(call):
        ROWS.append(pytest.param(call, expect, id=f"{category}: {name}"))
        return call
    return register


def leaf(*values):
    return th.Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def qkv(length=5, dim=4, batch=2, dtype=np.float64, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return [th.Tensor((scale * rng.standard_normal((batch, length, dim))).astype(dtype),
                      requires_grad=True) for _ in range(3)]


def tiny_model(name="sasrec"):
    th.manual_seed(0)
    return models.build_model(name, 7, max_len=5, dim=8, num_layers=1, dropout=0.0)


LEFT = np.array([[0, 0, 1, 2, 3], [0, 4, 5, 6, 7]])
TARGETS = np.array([[0, 0, 2, 3, 4], [0, 5, 6, 7, 1]])


# ------------------------------------------------------------------ engine
@row("engine", "second backward through a freed graph",
     Raises(RuntimeError, "already freed", "retain_graph=True"))
def _():
    x = leaf(1, 2)
    z = x * 2
    z.sum().backward()
    (z * 3).sum().backward()


@row("engine", "second backward with retain_graph=True the first time", Gives([8.0, 8.0]))
def _():
    x = leaf(1, 2)
    z = x * 2
    z.sum().backward(retain_graph=True)
    (z * 3).sum().backward()
    return x.grad


@row("engine", "x.data += 1 between forward and backward",
     Raises(RuntimeError, "input 0", "Mul", "changed in place", "call backward first"))
def _():
    x = leaf(1, 2)
    y = x * x
    x.data += 1
    y.sum().backward()


@row("engine", "x.data = x.data + 1 (a new array) keeps the saved values", Gives([2.0, 4.0]))
def _():
    x = leaf(1, 2)
    y = x * x
    x.data = x.data + 1
    y.sum().backward()
    return x.grad


@row("engine", "a saved output changed in place", Raises(RuntimeError, "its output", "Exp"))
def _():
    x = leaf(1, 2)
    y = x.exp()
    y.data *= 2
    y.sum().backward()


@row("engine", "a view of the changed array was saved", Raises(RuntimeError, "Mul", "changed in place"))
def _():
    x = th.Tensor(np.ones((2, 3)), requires_grad=True)
    y = x.T * x.T
    x.data -= 1
    y.sum().backward()


@row("engine", "an Adam step between forward and backward", Raises(RuntimeError, "changed in place"))
def _():
    lin = nn.Linear(3, 2)
    opt = optim.Adam(lin.parameters())
    lin(th.Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    opt.step()
    loss = lin(th.Tensor(np.ones((1, 3), dtype=np.float32))).sum()
    opt.step()
    loss.backward()


@row("engine", "an SGD step between forward and backward", Raises(RuntimeError, "changed in place"))
def _():
    lin = nn.Linear(3, 2)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(th.Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    loss = lin(th.Tensor(np.ones((1, 3), dtype=np.float32))).sum()
    opt.step()
    loss.backward()


@row("engine", "ids != 0 is a bool Tensor", Gives([[False, True, True], [True, False, True]]))
def _():
    result = th.Tensor(np.array([[0, 3, 1], [2, 0, 5]])) != 0
    assert isinstance(result, th.Tensor) and result.dtype == np.bool_
    return result.numpy()


for _symbol, _py, _np in (("==", operator.eq, np.equal), ("!=", operator.ne, np.not_equal),
                          ("<", operator.lt, np.less), ("<=", operator.le, np.less_equal),
                          (">", operator.gt, np.greater), (">=", operator.ge, np.greater_equal)):
    @row("engine", f"Tensor {_symbol} Tensor compares elementwise",
         Gives(_np([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])))
    def _(compare=_py):
        result = compare(leaf(1, 2, 3), leaf(2, 2, 2))
        assert isinstance(result, th.Tensor) and not result.requires_grad
        return result.numpy()


@row("engine", "a comparison with a float on an int Tensor is not truncated", Gives([False, True]))
def _():
    return (th.Tensor(np.array([0, 1])) > 0.5).numpy()


@row("engine", "Tensors stay hashable by identity", Gives(2))
def _():
    a, b = leaf(1.0), leaf(1.0)
    return len({a: 0, b: 1})


@row("engine", "bool() of a Tensor of several elements", Raises(ValueError, "ambiguous", "(3,)"))
def _():
    bool(leaf(1, 2, 3) > 0)


@row("engine", "bool() of a one-element Tensor", Gives(True))
def _():
    return bool(leaf(3.0) > 2)


@row("engine", "a ragged nested list as data", Raises(ValueError, "ragged", "same length"))
def _():
    th.Tensor([[1.0, 2.0], [3.0]])


@row("engine", "a kept p.grad is not changed by the next step", Gives([1.0, 1.0, 1.0]))
def _():
    lin = nn.Linear(3, 1, bias=False)
    opt = optim.Adam(lin.parameters())
    x = th.Tensor(np.ones((1, 3), dtype=np.float32))
    lin(x).sum().backward()
    kept = lin.weight.grad
    opt.step()
    opt.zero_grad()
    (lin(x) * 5).sum().backward()
    assert np.allclose(lin.weight.grad, 5.0)
    return kept[0]


@row("engine", "a kept p.grad survives Module.zero_grad too", Gives([1.0, 1.0, 1.0]))
def _():
    lin = nn.Linear(3, 1, bias=False)
    optim.Adam(lin.parameters())  # packs the parameter
    x = th.Tensor(np.ones((1, 3), dtype=np.float32))
    lin(x).sum().backward()
    kept = lin.weight.grad
    lin.zero_grad()
    (lin(x) * 7).sum().backward()
    return kept[0]


@row("engine", "backward() of a non-scalar without grad", Raises(RuntimeError, "one-element", "grad="))
def _():
    (leaf(1, 2) * 2).backward()


@row("engine", "backward(grad) of the wrong shape", Raises(ValueError, "grad has shape (3,)", "(2,)"))
def _():
    (leaf(1, 2) * 2).backward(np.ones(3))


@row("engine", "requires_grad on an int array", Raises(TypeError, "floating-point", "int"))
def _():
    th.Tensor(np.array([1, 2]), requires_grad=True)


# -------------------------------------------------------------- F.* functions
@row("F", "hydra_attention(q, k, v, mask): flags are keyword-only", Raises(TypeError, "positional"))
def _():
    q, k, v = qkv()
    F.hydra_attention(q, k, v, np.ones((2, 5), dtype=bool))


@row("F", "hydra_attention(causal=<a mask>)", Raises(TypeError, "causal must be True or False", "key_mask"))
def _():
    q, k, v = qkv()
    F.hydra_attention(q, k, v, causal=np.ones((2, 5), dtype=bool))


@row("F", "linear_attention(q, k, v, 2, True): causal is keyword-only", Raises(TypeError, "positional"))
def _():
    F.linear_attention(*qkv(), 2, True)


@row("F", "decayed_hydra_attention(q, k, v, decay, True)", Raises(TypeError, "positional"))
def _():
    F.decayed_hydra_attention(*qkv(), np.full(4, 0.5), True)


@row("F", "softmax_attention(q, k, v, mask): mask is keyword-only", Raises(TypeError, "positional"))
def _():
    F.softmax_attention(*qkv(), np.ones((5, 5), dtype=bool))


@row("F", "linear_attention(causal=1)", Raises(TypeError, "causal must be True or False"))
def _():
    F.linear_attention(*qkv(), 2, causal=1)


@row("F", "depthwise_conv1d(x, w, b, False): causal is keyword-only", Raises(TypeError, "positional"))
def _():
    F.depthwise_conv1d(qkv()[0], th.Tensor(np.ones((3, 4))), th.Tensor(np.zeros(4)), False)


@row("F", "depthwise_conv1d over length 0: empty output, zero gradients", Gives(np.zeros((3, 4))))
def _():
    x, weight = th.Tensor(np.ones((2, 0, 4)), requires_grad=True), leaf(*[[1.0] * 4] * 3)
    y = F.depthwise_conv1d(x, weight, th.Tensor(np.zeros(4)))
    y.backward(np.ones(y.shape))
    assert y.shape == (2, 0, 4)
    return weight.grad


@row("F", "hydra_attention over length 0", Raises(ValueError, "hydra_attention", "at least one position", "(2, 0, 4)"))
def _():
    F.hydra_attention(*qkv(length=0), causal=True)


@row("F", "softmax_attention over zero keys", Raises(ValueError, "softmax_attention", "at least one position"))
def _():
    q = qkv()[0]
    k, v = qkv(length=0)[:2]
    F.softmax_attention(q, k, v)


@row("F", "linear_attention over length 0", Raises(ValueError, "at least one position"))
def _():
    F.linear_attention(*qkv(length=0), 2)


@row("F", "decayed bidirectional attention with q and k of different lengths",
     Raises(ValueError, "decay by distance", "same length", "q (2, 3, 4)"))
def _():
    q = qkv(length=3)[0]
    k, v = qkv()[:2]
    F.decayed_hydra_attention(q, k, v, np.full((2, 4), 0.5))


@row("F", "hydra_attention of float16 inputs around 100 (the squared norm overflows float16)",
     Gives(True))
def _():
    q, k, v = qkv(dim=16, scale=100.0)
    wide = F.hydra_attention(q, k, v, causal=True).numpy()
    half = F.hydra_attention(*(th.Tensor(t.numpy().astype(np.float16)) for t in (q, k, v)),
                             causal=True).numpy()
    assert half.dtype == np.float16 and np.abs(half).max() > 1.0
    return np.allclose(half, wide, rtol=1e-2, atol=1e-2 * np.abs(wide).max())


@row("F", "the float16 Hydra gradient is finite and near float64's", Gives(True))
def _():
    q, k, v = qkv(dim=16, scale=100.0)
    grads = []
    for dtype in (np.float64, np.float16):
        x = th.Tensor(q.numpy().astype(dtype), requires_grad=True)
        F.hydra_attention(x, x, x, causal=True).sum().backward()
        grads.append(x.grad.astype(np.float64))
    return np.isfinite(grads[1]).all() and np.allclose(grads[1], grads[0], atol=0.05)


@row("F", "key_mask=ids != 0 (a bool Tensor) masks the padding", Gives(True))
def _():
    ids = th.Tensor(np.array([[0, 0, 3, 4, 5], [0, 1, 2, 3, 4]]))
    q, k, v = qkv()
    with_tensor = F.hydra_attention(q, k, v, key_mask=ids != 0).numpy()
    with_array = F.hydra_attention(q, k, v, key_mask=ids.numpy() != 0).numpy()
    unmasked = F.hydra_attention(q, k, v).numpy()
    return np.array_equal(with_tensor, with_array) and not np.allclose(with_tensor, unmasked)


@row("F", "key_mask of ints", Raises(ValueError, "key_mask must be a bool array", "int"))
def _():
    F.hydra_attention(*qkv(), key_mask=np.ones((2, 5), dtype=int))


@row("F", "key_mask as a ragged list", Raises(ValueError, "key_mask is a ragged nested list"))
def _():
    F.hydra_attention(*qkv(), key_mask=[[True] * 5, [True] * 4])


@row("F", "key_mask of the wrong length", Raises(ValueError, "key_mask of shape (2, 4)", "(2, 5)"))
def _():
    F.hydra_attention(*qkv(), key_mask=np.ones((2, 4), dtype=bool))


@row("F", "softmax over an axis of length 0 is empty", Gives(np.zeros((3, 0))))
def _():
    x = th.Tensor(np.ones((3, 0)), requires_grad=True)
    y = F.softmax(x)
    y.backward(np.ones(y.shape))
    assert x.grad.shape == (3, 0)
    return y.numpy()


@row("F", "prefix sums of length 0 are empty", Gives(np.zeros((2, 0, 3))))
def _():
    return scan.prefix_sum(np.zeros((2, 0, 3)), decay=np.full(3, 0.5))


@row("F", "embedding of a ragged list of ids", Raises(ValueError, "embedding", "ids is a ragged nested list"))
def _():
    F.embedding([[1, 2], [3]], th.Tensor(np.ones((5, 2))))


@row("F", "embedding ids out of range", Raises(IndexError, "ids must lie in [0, 5)", "to 5"))
def _():
    F.embedding(np.array([0, 5]), th.Tensor(np.ones((5, 2))))


@row("F", "cross_entropy target out of range", Raises(IndexError, "target ids", "[0, 3)"))
def _():
    F.cross_entropy(th.Tensor(np.zeros((2, 3))), np.array([0, 3]))


@row("F", "dropout p = 1", Raises(ValueError, "dropout probability", "[0, 1)"))
def _():
    F.dropout(leaf(1, 2), 1.0)


# ---------------------------------------------------------- layers and models
def layer_input(length=5, dim=8):
    return th.Tensor(np.random.default_rng(0).standard_normal((2, length, dim)).astype(np.float32))


@row("layers", "softmax layer: key_mask of the wrong length, named as passed",
     Raises(ValueError, "MultiHeadSoftmaxAttention", "key_mask of shape (2, 3)", "(2, 5)"))
def _():
    nn.MultiHeadSoftmaxAttention(8, 2)(layer_input(), causal=True, key_mask=np.ones((2, 3), bool))


@row("layers", "softmax layer: a 1-D key_mask", Raises(ValueError, "key_mask must have shape (2, 5)", "(5,)"))
def _():
    nn.MultiHeadSoftmaxAttention(8, 2)(layer_input(), key_mask=np.ones(5, bool))


@row("layers", "Hydra layer: key_mask of the wrong batch",
     Raises(ValueError, "HydraAttention", "key_mask of shape (3, 5)"))
def _():
    nn.HydraAttention(8)(layer_input(), causal=True, key_mask=np.ones((3, 5), bool))


@row("layers", "a layer given a mask as causal", Raises(TypeError, "HydraAttention", "causal must be True or False"))
def _():
    nn.HydraAttention(8)(layer_input(), causal=np.ones((2, 5), bool))


@row("layers", "a layer over length 0", Raises(ValueError, "at least one position"))
def _():
    nn.HydraAttention(8)(layer_input(length=0), causal=True)


@row("layers", "Embedding of a ragged list", Raises(ValueError, "Embedding", "ragged"))
def _():
    nn.Embedding(5, 2)([[1, 2], [3]])


@row("models", "right-padded inputs", Raises(ValueError, "inputs row 0", "LEFT-padded"))
def _():
    tiny_model().encode(np.array([[1, 2, 3, 0, 0], [0, 4, 5, 6, 7]]))


@row("models", "a padding 0 between two items", Raises(ValueError, "inputs row 1", "LEFT-padded"))
def _():
    tiny_model().encode(np.array([[0, 0, 1, 2, 3], [4, 0, 5, 6, 7]]))


@row("models", "left-padded users with different histories get different scores", Gives(False))
def _():
    scores = tiny_model().predict_scores(np.array([[0, 0, 0, 1, 2], [0, 0, 0, 3, 4]]))
    return bool(np.allclose(scores[0], scores[1]))


@row("models", "inputs as a ragged list", Raises(ValueError, "SASRec", "inputs is a ragged nested list", "left-pad"))
def _():
    tiny_model().encode([[1, 2, 3], [4, 5]])


@row("models", "inputs of length 0", Raises(ValueError, "SASRec", "inputs must have shape (B, L) with B, L >= 1"))
def _():
    tiny_model().encode(np.zeros((2, 0), dtype=np.int64))


@row("models", "float inputs", Raises(TypeError, "SASRec", "inputs must be an integer array"))
def _():
    tiny_model().encode(np.ones((2, 5)))


@row("models", "an input id past the catalogue", Raises(IndexError, "SASRec", "inputs must lie in [0, 8)"))
def _():
    tiny_model().encode(np.array([[0, 0, 1, 2, 8]]))


@row("models", "a target id past the catalogue", Raises(ValueError, "SASRec", "targets must be item ids in 1..7"))
def _():
    tiny_model().loss(SimpleNamespace(inputs=LEFT, targets=TARGETS + 4))


@row("models", "a negative target id", Raises(ValueError, "targets must be item ids", "from -1"))
def _():
    tiny_model().loss(SimpleNamespace(inputs=LEFT, targets=TARGETS - 1))


@row("models", "BERT4Rec: the [MASK] id as a target",
     Raises(ValueError, "BERT4Rec", "targets must be item ids in 1..7"))
def _():
    bert = tiny_model("bert4rec")
    bert.loss(SimpleNamespace(inputs=LEFT, targets=np.full((2, 5), bert.mask_token)))


@row("models", "targets as a ragged list", Raises(ValueError, "targets is a ragged nested list"))
def _():
    tiny_model().loss(SimpleNamespace(inputs=LEFT, targets=[[1, 2, 3, 4, 5], [1]]))


@row("models", "targets of another shape than the inputs", Raises(ValueError, "targets of shape (2, 4)", "(2, 5)"))
def _():
    tiny_model().loss(SimpleNamespace(inputs=LEFT, targets=TARGETS[:, 1:]))


@row("models", "a correct batch gives a finite loss", Gives(True))
def _():
    return bool(np.isfinite(tiny_model().loss(SimpleNamespace(inputs=LEFT, targets=TARGETS)).item()))


# ---------------------------------------------------- optimizers and modules
def params():
    return nn.Linear(3, 2).parameters()


for _name, _make, _words in (
    ("Adam(lr=nan)", lambda: optim.Adam(params(), lr=float("nan")), ("learning rate lr nan", "finite")),
    ("Adam(lr=-1)", lambda: optim.Adam(params(), lr=-1), ("learning rate lr -1", ">= 0")),
    ("Adam(lr=inf)", lambda: optim.Adam(params(), lr=float("inf")), ("learning rate", "finite")),
    ("SGD(lr=nan)", lambda: optim.SGD(params(), lr=float("nan")), ("SGD", "learning rate")),
    ("Adam(betas=(0.9, 1.0))", lambda: optim.Adam(params(), betas=(0.9, 1.0)), ("betas[1]", "[0, 1)")),
    ("Adam(betas=(nan, 0.999))", lambda: optim.Adam(params(), betas=(float("nan"), 0.999)), ("betas[0]",)),
    ("Adam(betas=(-0.1, 0.999))", lambda: optim.Adam(params(), betas=(-0.1, 0.999)), ("betas[0]", "[0, 1)")),
    ("Adam(eps=-1e-8)", lambda: optim.Adam(params(), eps=-1e-8), ("eps", ">= 0")),
    ("Adam(eps=inf)", lambda: optim.Adam(params(), eps=float("inf")), ("eps", "finite")),
    ("Adam(weight_decay=-0.1)", lambda: optim.Adam(params(), weight_decay=-0.1), ("weight_decay",)),
    ("Adam(weight_decay=nan)", lambda: optim.Adam(params(), weight_decay=float("nan")), ("weight_decay",)),
    ("SGD(momentum=-0.5)", lambda: optim.SGD(params(), lr=0.1, momentum=-0.5), ("momentum", ">= 0")),
    ("SGD(momentum=nan)", lambda: optim.SGD(params(), lr=0.1, momentum=float("nan")), ("momentum",)),
    ("SGD(weight_decay=inf)", lambda: optim.SGD(params(), lr=0.1, weight_decay=float("inf")),
     ("weight_decay", "finite")),
    ("EMA(decay=nan)", lambda: optim.ExponentialMovingAverage(params(), float("nan")), ("EMA decay",)),
):
    ROWS.append(pytest.param(_make, Raises(ValueError, *_words), id=f"optim: {_name}"))


@row("optim", "Adam(lr=None)", Raises(ValueError, "invalid learning rate lr None", "finite number"))
def _():
    optim.Adam(params(), lr=None)


@row("optim", "Adam(betas=0.9)", Raises(TypeError, "betas must be a pair"))
def _():
    optim.Adam(params(), betas=0.9)


@row("optim", "SGD with a parameter listed twice", Raises(ValueError, "SGD", "appears twice"))
def _():
    p = params()
    optim.SGD(p + p[:1], lr=0.1)


@row("optim", "Adam with a parameter listed twice", Raises(ValueError, "Adam", "appears twice"))
def _():
    p = params()
    optim.Adam(p + p[:1])


@row("optim", "Adam(model)", Raises(TypeError, "Adam", "a Module", "model.parameters()"))
def _():
    optim.Adam(nn.Linear(3, 2))


@row("optim", "SGD(model)", Raises(TypeError, "SGD", "model.parameters()"))
def _():
    optim.SGD(nn.Linear(3, 2), lr=0.1)


@row("optim", "Adam(one Tensor)", Raises(TypeError, "params is Parameter", "model.parameters()"))
def _():
    optim.Adam(nn.Linear(3, 2).weight)


@row("optim", "Adam([])", Raises(ValueError, "empty parameter list"))
def _():
    optim.Adam([])


@row("optim", "SGD updates a parameter once per step", Gives([[0.9, 0.9, 0.9]]))
def _():
    lin = nn.Linear(3, 1, bias=False)
    lin.weight.data = np.ones((1, 3), dtype=np.float32)
    opt = optim.SGD(lin.parameters(), lr=0.1)
    lin(th.Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    opt.step()
    return lin.weight.data


@row("modules", "lin.weight = an array", Raises(TypeError, "Linear.weight", "Parameter", "weight.data = array"))
def _():
    nn.Linear(3, 2).weight = np.zeros((2, 3))


@row("modules", "lin.weight = a plain Tensor", Raises(TypeError, "cannot assign Tensor"))
def _():
    nn.Linear(3, 2).weight = th.Tensor(np.zeros((2, 3)))


@row("modules", "lin.weight = a new Parameter stays a parameter", Gives(np.full((2, 3), 2.0)))
def _():
    lin = nn.Linear(3, 2)
    lin.weight = nn.Parameter(np.full((2, 3), 2.0, dtype=np.float32))
    return lin.state_dict()["weight"]


@row("modules", "load_state_dict with Tensor and Parameter values", Gives(np.full((2, 3), 3.0)))
def _():
    lin = nn.Linear(3, 2)
    lin.load_state_dict({"weight": th.Tensor(np.full((2, 3), 3.0)),
                         "bias": nn.Parameter(np.zeros(2, dtype=np.float32))})
    assert lin.bias.dtype == np.float32
    return lin.weight.data


@row("modules", "load_state_dict: a value of the wrong shape",
     Raises(ValueError, "weight: checkpoint (3, 2)", "(2, 3)"))
def _():
    nn.Linear(3, 2).load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})


@row("modules", "load_state_dict: a value of strings", Raises(TypeError, "state['bias']", "numbers"))
def _():
    nn.Linear(3, 2).load_state_dict({"weight": np.zeros((2, 3)), "bias": "zeros"})


@row("modules", "load_state_dict: a ragged list", Raises(TypeError, "state['weight']", "ragged"))
def _():
    nn.Linear(3, 2).load_state_dict({"weight": [[0.0, 0.0, 0.0], [0.0]], "bias": np.zeros(2)})


@row("modules", "load_state_dict(strict=False) skips an unexpected key of any type", Gives(np.ones(2)))
def _():
    lin = nn.Linear(3, 2)
    lin.load_state_dict({"bias": np.ones(2), "note": "not an array"}, strict=False)
    return lin.bias.data


@row("modules", "load_state_dict: a missing key", Raises(KeyError, "missing keys ['bias']"))
def _():
    nn.Linear(3, 2).load_state_dict({"weight": np.zeros((2, 3))})


@row("modules", "load_state_dict of a Module, not its state", Raises(TypeError, "state must be a dict", "Linear"))
def _():
    nn.Linear(3, 2).load_state_dict(nn.Linear(3, 2))


# ---------------------------------------------------------------- gradcheck
@row("gradcheck", "a function with dropout in training mode",
     Raises(ValueError, "not deterministic", "dropout"))
def _():
    th.gradcheck(lambda x: F.dropout(x * 2, 0.5), [leaf(1, 2, 3)])


@row("gradcheck", "the same function in eval mode passes", Gives(True))
def _():
    layer = nn.Dropout(0.5).eval()
    return th.gradcheck(lambda x: layer(x * 2), [leaf(1, 2, 3)])


@row("gradcheck", "a float32 input", Raises(TypeError, "input 0", "float64"))
def _():
    th.gradcheck(lambda x: x * 2, [th.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)])


@row("gradcheck", "no input requires grad", Raises(ValueError, "no input has requires_grad=True"))
def _():
    th.gradcheck(lambda x: x * 2, [th.Tensor(np.ones(2))])


# ------------------------------------------- left as PyTorch has them (documented)
@row("as PyTorch", "a NaN in a future value reaches earlier rows of causal softmax attention",
     Gives([True, True, True, True]))
def _():
    q, k, v = (t.numpy()[:1] for t in qkv(length=4))
    v[0, 3] = np.nan
    out = F.softmax_attention(th.Tensor(q), th.Tensor(k), th.Tensor(v),
                              mask=np.tril(np.ones((4, 4), dtype=bool)))
    return np.isnan(out.numpy()[0, :, 0])


@row("as PyTorch", "modules in a plain dict are not parameters", Gives(0))
def _():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = {"a": nn.Linear(2, 2)}
    return len(Holder().parameters())


@row("as PyTorch", "binary cross-entropy takes targets outside [0, 1]", Gives(np.log(2.0)))
def _():
    return F.binary_cross_entropy_with_logits(th.Tensor(np.zeros(2)), np.array([2.0, -1.0])).item()


@pytest.mark.parametrize("call, expect", ROWS)
def test_api_mistake(call, expect):
    if isinstance(expect, Raises):
        with pytest.raises(expect.error) as caught:
            call()
        message = str(caught.value).strip("'\"")  # KeyError quotes its message
        assert "\n" not in message, message
        for word in expect.words:
            assert word in message, f"{word!r} not in {message!r}"
    else:
        result = call()
        np.testing.assert_allclose(np.asarray(result, dtype=np.float64),
                                   np.asarray(expect.expected, dtype=np.float64), rtol=1e-6)


def test_the_table_is_large():
    assert len(ROWS) >= 60
