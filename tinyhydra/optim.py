"""``tinyhydra.optim``, as ``torch.optim``: the optimizers live in :mod:`tinyhydra.nn.optim`,
the learning-rate schedules in :mod:`tinyhydra.nn.lr_schedule`."""
from .nn import lr_schedule as lr_scheduler  # torch.optim.lr_scheduler's name
from .nn import optim as _optim
from .nn.lr_schedule import CosineAnnealingLR
from .nn.optim import *  # noqa: F403

__all__ = [*_optim.__all__, "CosineAnnealingLR", "lr_scheduler"]
