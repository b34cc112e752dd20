"""tinyhydra: a small autograd engine on NumPy (optional CuPy) for efficient attention
in sequential recommendation: Hydra attention inside SASRec- and BERT4Rec-style encoders.

Reading order: errors -> engine -> attention -> functional -> nn -> rec.

* :mod:`.errors`: the exceptions, each a mistake a user can fix, with a one-line message;
* :mod:`.engine`: Tensor, Function and reverse-mode autodiff on NumPy/CuPy arrays;
* :mod:`.attention`: the attention ops (softmax, linear, Hydra, decayed Hydra) as fused
  Functions with derived backward, and their quadratic twins;
* :mod:`.functional`: the public ``F.*`` API over both;
* :mod:`.nn`: modules, layers, the attention layers and their registry, optimizers;
* :mod:`.rec`: data sets, the recommenders (SASRec, HydraRecUni, BERT4Rec, HydraRecBi, ...)
  and their metrics.

Each sub-package's docstring gives the order inside it (the README's table, checked by
tests/test_layout.py). ``tinyhydra.optim`` and ``tinyhydra.models`` are the names PyTorch
users expect for :mod:`.nn.optim` and :mod:`.rec.models`. The training app
(``examples/trainer``) and the course (``course/``) use the library from outside.
"""
from .engine import memory

memory.keep_freed_memory()  # before the first large array: see tinyhydra/engine/memory.py

from . import functional  # noqa: E402
from .engine import backend  # noqa: E402
from .engine.backend import BackendError, gpu_available, manual_seed  # noqa: E402
from .engine.gradcheck import gradcheck  # noqa: E402
from .engine.graph import is_grad_enabled, no_grad  # noqa: E402
from .engine.memory import freed_memory_setting  # noqa: E402
from .engine.profiler import profile  # noqa: E402
from .engine.tensor import Function, Tensor, tensor  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "no_grad", "is_grad_enabled", "gradcheck", "profile",
    "manual_seed", "gpu_available", "BackendError", "backend", "functional", "freed_memory_setting",
]
