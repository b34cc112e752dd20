"""Optimizers: SGD (with momentum) and Adam / AdamW; an exponential moving average of weights.

Updates run on raw arrays, in place on ``param.data``, with the array module that
owns them (NumPy or CuPy), so no graph is recorded and an optimizer built before
``model.to("gpu")`` keeps working. Hyperparameters are Python floats, which never
promote an array's dtype: float32 parameters and moments stay float32.
"""
from __future__ import annotations

import contextlib
import math

from . import backend
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "ExponentialMovingAverage"]


def _restored_like(param: Tensor, value, what: str):
    """A copy of checkpoint array ``value`` on ``param``'s device, in its dtype; ``what``
    names the array in the error when the shapes differ."""
    if tuple(value.shape) != param.shape:
        raise ValueError(f"{what} has shape {tuple(value.shape)}, the parameter has shape {param.shape}")
    xp = backend.get_array_module(param.data)
    return xp.array(backend.as_numpy(value), dtype=param.dtype)  # xp.array copies


class Optimizer:
    """Holds the parameters and one state dict per parameter (built lazily on its first step).

    Subclasses implement ``update(param, grad, state)``; ``step()`` calls it for every
    parameter that has a gradient.
    """

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, param in enumerate(self.params):
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is not a Tensor that requires grad "
                    f"(got {type(param).__name__}); pass model.parameters()")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = float(lr)
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update every parameter whose ``grad`` is set; skip the others."""
        for param, state in zip(self.params, self.state):
            if param.grad is None:
                continue
            if param.grad.shape != param.shape:
                raise ValueError(
                    f"{type(self).__name__}: gradient of shape {param.grad.shape} for a "
                    f"parameter of shape {param.shape}")
            self.update(param, param.grad, state)

    def update(self, param: Tensor, grad, state: dict) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        return {"lr": self.lr}

    # ---------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Hyperparameters and, per parameter, its step count and moments as host arrays."""
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "state": [
                {key: backend.as_numpy(value).copy() if hasattr(value, "shape") else value
                 for key, value in state.items()}
                for state in self.state
            ],
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`'s output; moments move to each parameter's device."""
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(
                f"cannot load a {state_dict.get('type')!r} optimizer state into "
                f"{type(self).__name__}")
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(
                f"optimizer state has {len(states)} parameters, this optimizer has "
                f"{len(self.params)}")
        new_states = []
        for i, (param, state) in enumerate(zip(self.params, states)):
            new_states.append({
                key: _restored_like(param, value, f"optimizer state {key!r} of parameter {i}")
                if hasattr(value, "shape") else value
                for key, value in state.items()})
        self.state = new_states
        for name, value in state_dict["hyperparameters"].items():
            setattr(self, name, value)


class SGD(Optimizer):
    """p -= lr * b, with b = g (no momentum) or b = momentum * b + g (PyTorch's form).

    ``weight_decay`` adds ``weight_decay * p`` to the gradient first (L2 regularisation).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

    def update(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param.data
        if self.momentum:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.copy()
            else:
                buffer = state["momentum_buffer"]
                buffer *= self.momentum
                buffer += grad
            grad = state["momentum_buffer"]
        param.data -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015); AdamW (Loshchilov & Hutter 2019) with ``decoupled_weight_decay``.

    Per parameter, at its step t (counted per parameter, so one skipped for lack of a
    gradient keeps its own bias correction)::

        g = grad (+ weight_decay * p            when not decoupled: L2 in the gradient)
        p = p * (1 - lr * weight_decay)         (when decoupled: AdamW)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"Adam betas must lie in [0, 1), got {betas}")
        self.betas = (float(beta1), float(beta2))
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay,
                "decoupled_weight_decay": self.decoupled_weight_decay}

    def update(self, param, grad, state):
        xp = backend.get_array_module(param.data)
        beta1, beta2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param.data)
            state["exp_avg_sq"] = xp.zeros_like(param.data)
        state["step"] += 1
        step = state["step"]
        if self.weight_decay:
            if self.decoupled_weight_decay:
                param.data *= 1.0 - self.lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1.0 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * grad * grad
        denom = xp.sqrt(exp_avg_sq)
        denom *= 1.0 / math.sqrt(1.0 - beta2**step)
        denom += self.eps
        update = xp.divide(exp_avg, denom, out=denom)  # reuse the buffer
        update *= self.lr / (1.0 - beta1**step)
        param.data -= update


class ExponentialMovingAverage:
    """An exponential moving average of parameters (Polyak averaging), for evaluation.

    After every optimizer step, ``update()`` moves each average towards its parameter:

        avg <- decay * avg + (1 - decay) * param

    so the average spans about ``1 / (1 - decay)`` steps (0.998: 500 steps). The
    averaged weights sit between the points that noisy training steps visit and often
    rank better than any one of them. ``with ema.average_parameters(): ...`` puts them
    into the model for evaluation or saving and puts the trained weights back after.
    The averages start as copies of the parameters and live on their device.
    """

    def __init__(self, params, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.params = list(params)
        self.decay = float(decay)
        self.averages = [param.data.copy() for param in self.params]

    def update(self) -> None:
        for param, average in zip(self.params, self.averages):
            average *= self.decay
            average += (1.0 - self.decay) * param.data

    @contextlib.contextmanager
    def average_parameters(self):
        """Swap the averages into the parameters for the ``with`` block."""
        trained = [param.data for param in self.params]
        for param, average in zip(self.params, self.averages):
            param.data = average.copy()  # a copy: nothing in the block can change the averages
        try:
            yield
        finally:
            for param, data in zip(self.params, trained):
                param.data = data

    def state_dict(self) -> dict:
        return {"decay": self.decay, "averages": [backend.as_numpy(a).copy() for a in self.averages]}

    def load_state_dict(self, state_dict: dict) -> None:
        averages = state_dict["averages"]
        if len(averages) != len(self.params):
            raise ValueError(f"EMA state has {len(averages)} averages, there are "
                             f"{len(self.params)} parameters")
        self.averages = [_restored_like(param, average, f"EMA average {i}")
                         for i, (param, average) in enumerate(zip(self.params, averages))]
        self.decay = float(state_dict["decay"])
