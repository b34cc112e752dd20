"""tinyhydra: a small autograd engine on NumPy (optional CuPy) for efficient attention
in sequential recommendation: Hydra attention inside SASRec- and BERT4Rec-style encoders.
The notebooks' exercise checks are not part of it: they live in the top-level ``course``.

Reading order (the README's table, checked by tests/test_layout.py): backend, memory -> tensor ->
ops -> softmax, norm, embedding -> gradcheck -> masking -> softmax_attention ->
linear_attention -> scan -> hydra -> decayed_hydra -> conv -> reference -> functional ->
module -> layers -> attention_layers -> nn -> optim, flat -> models -> data, metrics ->
errors -> checkpoint -> config, cli, runs -> profiler.
"""
from . import memory

memory.keep_freed_memory()  # before the first large array: see tinyhydra/memory.py

from . import backend, functional  # noqa: E402
from .backend import BackendError, gpu_available, manual_seed  # noqa: E402
from .gradcheck import gradcheck  # noqa: E402
from .memory import freed_memory_setting  # noqa: E402
from .profiler import profile  # noqa: E402
from .tensor import Function, Tensor, is_grad_enabled, no_grad, tensor  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "no_grad", "is_grad_enabled", "gradcheck", "profile",
    "manual_seed", "gpu_available", "BackendError", "backend", "functional", "freed_memory_setting",
]
