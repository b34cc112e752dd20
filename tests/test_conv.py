"""The depthwise convolution in front of Q/K/V: against a plain loop, gradients, causality."""
import numpy as np
import pytest

import tinyhydra as th
from tinyhydra import functional as F
from tinyhydra import nn
from tinyhydra.attention.conv import conv_offsets


def loop_conv(x, weight, bias, offsets):
    """y[b, i, f] = sum_s w[s, f] x[b, i + s, f] + b[f], zero outside the sequence."""
    y = np.broadcast_to(bias, x.shape).copy()
    length = x.shape[1]
    for i in range(length):
        for row, s in enumerate(offsets):
            if 0 <= i + s < length:
                y[:, i] += weight[row] * x[:, i + s]
    return y


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("width, length", [(1, 3), (4, 2), (4, 9), (3, 5)])
def test_matches_the_loop_and_gradchecks(causal, width, length, rng):
    x, weight, bias = rng.standard_normal((2, length, 3)), rng.standard_normal((width, 3)), rng.standard_normal(3)
    out = F.depthwise_conv1d(th.Tensor(x), th.Tensor(weight), th.Tensor(bias), causal=causal)
    expected = loop_conv(x, weight, bias, conv_offsets(width, causal))
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    leaves = [th.Tensor(a, requires_grad=True) for a in (x, weight, bias)]
    th.gradcheck(lambda *t: F.depthwise_conv1d(*t, causal=causal), leaves)


def test_offsets_look_back_only_when_causal():
    assert conv_offsets(4, causal=True) == [-3, -2, -1, 0]
    assert conv_offsets(4, causal=False) == [-2, -1, 0, 1]


def test_layer_starts_as_the_identity_and_checks_shapes(rng):
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    for causal in (True, False):
        layer = nn.DepthwiseConv1d(4, width=4, causal=causal)
        np.testing.assert_array_equal(layer(th.Tensor(x)).data, x)
    with pytest.raises(ValueError, match=r"weight must be \(width, 4\)"):
        F.depthwise_conv1d(th.Tensor(x), th.Tensor(np.ones((4, 3))), th.Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="width must be >= 1"):
        nn.DepthwiseConv1d(4, width=0)
