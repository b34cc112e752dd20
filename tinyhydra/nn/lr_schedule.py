"""Learning-rate schedules, as ``torch.optim.lr_scheduler``: the learning rate as a pure
function of the number of optimizer steps taken, so a resumed run needs only that count.

:class:`CosineAnnealingLR` warms up linearly over W steps, then anneals along half a cosine
from the optimizer's learning rate ``base`` down to ``min_lr`` at step T, and stays there:

    lr(t) = base * (t + 1) / W                                         t < W
    lr(t) = min_lr + (base - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2   W <= t < T
    lr(t) = min_lr                                                     t >= T

where t is the number of steps taken before the step that uses lr(t). With W = 0 this is
PyTorch's ``CosineAnnealingLR(optimizer, T_max=T, eta_min=min_lr)`` stepped once per batch
(its ``last_epoch`` counts what ``last_step`` counts here), without restarts after T.
"""
from __future__ import annotations

import math

from .optim import Optimizer, _check_number

__all__ = ["CosineAnnealingLR"]


class CosineAnnealingLR:
    """Sets ``optimizer.lr`` to lr(t) now and after every :meth:`step`.

    ``total_steps`` T (> warm-up), ``warmup_steps`` W >= 0, ``min_lr`` in [0, base];
    ``last_step``: the steps already taken (a resumed run passes its count).
    """

    def __init__(self, optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
                 min_lr: float = 0.0, last_step: int = 0):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.min_lr = _check_number("CosineAnnealingLR", "min_lr", min_lr)
        if self.min_lr > self.base_lr:
            raise ValueError(f"CosineAnnealingLR: min_lr {min_lr} is above the optimizer's lr {self.base_lr}; "
                             "give a min_lr <= lr")
        if isinstance(warmup_steps, bool) or not (isinstance(warmup_steps, int) and warmup_steps >= 0):
            raise ValueError(f"CosineAnnealingLR: warmup_steps must be an int >= 0, got {warmup_steps!r}")
        if isinstance(total_steps, bool) or not (isinstance(total_steps, int) and total_steps > warmup_steps):
            raise ValueError(f"CosineAnnealingLR: total_steps ({total_steps!r}) must be an int above "
                             f"warmup_steps ({warmup_steps}); shorten the warm-up or train longer")
        self.total_steps, self.warmup_steps = total_steps, warmup_steps
        self.last_step = int(last_step)
        optimizer.lr = self.lr_at(self.last_step)

    def lr_at(self, step: int) -> float:
        """lr(t) of the module docstring, for t = ``step``."""
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)  # in [0, 1)
        return self.min_lr + (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0

    def step(self) -> None:
        """After ``optimizer.step()``: one more step taken, the next one's learning rate set."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)

    def get_last_lr(self) -> float:
        return self.optimizer.lr
