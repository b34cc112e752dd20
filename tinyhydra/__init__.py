"""tinyhydra: a small autograd engine on NumPy (optional CuPy) for efficient attention
in sequential recommendation: Hydra attention inside SASRec- and BERT4Rec-style encoders.
The notebooks' exercise checks are not part of it: they live in the top-level ``course``.

Reading order (the README's table, checked by tests/test_layout.py): backend -> tensor ->
ops -> softmax, norm, embedding -> gradcheck -> masking -> softmax_attention ->
linear_attention -> scan -> hydra -> decayed_hydra -> conv -> reference -> functional ->
module -> layers -> attention_layers -> nn -> optim, flat -> models -> data, metrics ->
errors -> checkpoint -> config, cli, runs -> profiler.
"""
from . import backend, functional
from .backend import BackendError, gpu_available, manual_seed
from .gradcheck import gradcheck
from .profiler import profile
from .tensor import Function, Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "no_grad", "is_grad_enabled", "gradcheck", "profile",
    "manual_seed", "gpu_available", "BackendError", "backend", "functional",
]
