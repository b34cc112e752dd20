"""``tinyhydra.optim``, as ``torch.optim``: the optimizers live in :mod:`tinyhydra.nn.optim`."""
from .nn.optim import *  # noqa: F403
from .nn.optim import __all__  # noqa: F401
