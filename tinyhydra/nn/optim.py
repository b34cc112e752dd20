"""Optimizers: SGD (with momentum) and Adam / AdamW; an exponential moving average of weights.
Updates run on raw arrays, in place on ``param.data``, so no graph is recorded. Python
float hyperparameters never promote an array's dtype: float32 stays float32. Adam and the
moving average keep parameters, gradients, moments and averages as views into one flat
array per device and dtype (:mod:`tinyhydra.nn.flat`), and their update is one formula over
all parameters (on a GPU, ONE kernel per step), packed again after ``model.to``, ``to_dtype`` or ``load_state_dict``.
"""
from __future__ import annotations

import contextlib
import math
import numbers

from ..engine import backend
from ..engine.graph import bump_version
from ..engine.tensor import Tensor
from . import flat

__all__ = ["Optimizer", "SGD", "Adam", "ExponentialMovingAverage"]


def _check_number(owner: str, name: str, value, below: float = math.inf) -> float:
    """``value`` as a float in [0, below), else an error naming ``name`` (as PyTorch's checks)."""
    number = float(value) if isinstance(value, numbers.Real) else math.nan
    if not (math.isfinite(number) and 0.0 <= number < below):
        span = ">= 0" if below == math.inf else f"in [0, {below:g})"
        raise ValueError(f"{owner}: invalid {name} {value!r}; it must be a finite number {span}")
    return number


def _restored_like(param: Tensor, value, what: str):
    """A copy of checkpoint array ``value`` on ``param``'s device and dtype; errors name ``what``."""
    if tuple(value.shape) != param.shape:
        raise ValueError(f"{what} has shape {tuple(value.shape)}, the parameter has shape {param.shape}")
    xp = backend.get_array_module(param.data)
    return xp.array(backend.as_numpy(value), dtype=param.dtype)  # xp.array copies


class Optimizer:
    """Holds the parameters and one state dict per parameter (built lazily on its first step).

    Subclasses implement ``update(param, grad, state)``; ``step()`` calls it for every
    parameter that has a gradient (Adam overrides ``step()`` to update all at once).
    """

    def __init__(self, params, lr: float):
        self.params = flat.parameter_list(params, type(self).__name__)
        self.lr = _check_number(type(self).__name__, "learning rate lr", lr)
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Forget the gradients: the next backward writes fresh arrays (a kept grad stays)."""
        flat.forget_grads(self.params)

    def step(self) -> None:
        """Update every parameter whose ``grad`` is set; skip the others."""
        for i, (param, grad) in self._gradients():
            self.update(param, grad, self.state[i])

    def _gradients(self):
        """(index, (parameter, gradient)) for each parameter that has a gradient."""
        for i, param in enumerate(self.params):
            if param.grad is None:
                continue
            if param.grad.shape != param.shape:
                raise ValueError(
                    f"{type(self).__name__}: gradient of shape {param.grad.shape} for a "
                    f"parameter of shape {param.shape}")
            yield i, (param, param.grad)

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
            raise ValueError(f"optimizer state has {len(states)} parameters, this optimizer has {len(self.params)}")
        self.state = [{key: _restored_like(param, value, f"optimizer state {key!r} of parameter {i}")
                       if hasattr(value, "shape") else value for key, value in state.items()}
                      for i, (param, state) in enumerate(zip(self.params, states))]
        for name, value in state_dict["hyperparameters"].items():
            setattr(self, name, value)


class SGD(Optimizer):
    """p -= lr * b, with b = g (no momentum) or b = momentum * b + g (PyTorch's form).

    ``weight_decay`` adds ``weight_decay * p`` to the gradient first (L2 regularisation).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = _check_number("SGD", "momentum", momentum)
        self.weight_decay = _check_number("SGD", "weight_decay", weight_decay)

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


def adam_update(param, grad, exp_avg, exp_avg_sq, step: int, lr: float, betas, eps: float,
                weight_decay: float = 0.0, decoupled_weight_decay: bool = False) -> None:
    """One Adam step, in place on ``param``, ``exp_avg`` and ``exp_avg_sq``: arrays of one
    shape, either one parameter's or the flat arrays of all of them (see :class:`Adam`)."""
    beta1, beta2 = betas  # below, l2 = 0 and shrink = 1 change nothing
    l2, shrink = (0.0, 1.0 - lr * weight_decay) if decoupled_weight_decay else (weight_decay, 1.0)
    adam_formula(param, grad, exp_avg, exp_avg_sq, beta1, 1.0 - beta1, beta2, 1.0 - beta2,
                 1.0 / math.sqrt(1.0 - beta2**step), eps, lr / (1.0 - beta1**step), l2, shrink)


@backend.elementwise
def adam_formula(xp, param, grad, exp_avg, exp_avg_sq, beta1, one_minus_beta1, beta2, one_minus_beta2,
                 inv_sqrt_bias2, eps, step_size, l2, shrink):
    """In place; no branches, so one kernel on a GPU whatever the hyperparameters."""
    grad = grad + l2 * param  # out of place: the gradient stays as computed
    param *= shrink
    exp_avg *= beta1
    exp_avg += one_minus_beta1 * grad
    exp_avg_sq *= beta2
    exp_avg_sq += one_minus_beta2 * grad * grad
    param -= exp_avg / (xp.sqrt(exp_avg_sq) * inv_sqrt_bias2 + eps) * step_size


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015); AdamW (Loshchilov & Hutter 2019) with ``decoupled_weight_decay``.

    Per parameter, at its step t (counted per parameter, so one skipped for lack of a
    gradient keeps its own bias correction)::

        g = grad (+ weight_decay * p            when not decoupled: L2 in the gradient)
        p = p * (1 - lr * weight_decay)         (when decoupled: AdamW)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    When every parameter has a gradient and all are at the same step, :func:`adam_update`
    runs ONCE on the flat arrays, else per parameter on their views: the same numbers.
    ``state[i]`` holds parameter i's step and its views of the moments (empty until its
    first step), which is what :meth:`state_dict` saves.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(_check_number("Adam", f"betas[{i}]", b, below=1.0) for i, b in enumerate(betas))
        self.eps, self.weight_decay = (_check_number("Adam", name, value) for name, value in
                                       (("eps", eps), ("weight_decay", weight_decay)))
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        self.flat = flat.packing_of(self.params)
        self._layout_version = None  # the packing's version the flat moments are laid out for

    def hyperparameters(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay, "decoupled_weight_decay": self.decoupled_weight_decay}

    def step(self) -> None:
        """Update every parameter whose ``grad`` is set; skip the others."""
        self.flat.refresh()  # repack if Module.to / to_dtype / load_state_dict replaced a param.data
        self._lay_out_moments()
        hyper = (self.lr, self.betas, self.eps, self.weight_decay, self.decoupled_weight_decay)
        if self.flat.gather_grads() and len({state.get("step", 0) for state in self.state}) == 1:
            for i in range(len(self.params)):
                step = self._advance(i)["step"]
            for group, (exp_avg, exp_avg_sq) in zip(self.flat.groups, self._flat_moments):
                adam_update(group.data, group.grad, exp_avg, exp_avg_sq, step, *hyper)
                bump_version(group.data)  # a graph that saved a parameter is now stale
            return
        for i, (param, grad) in self._gradients():
            state = self._advance(i)
            adam_update(param.data, grad, state["exp_avg"], state["exp_avg_sq"], state["step"], *hyper)
            bump_version(param.data)

    def _advance(self, i: int) -> dict:
        """Parameter i's state, one step further (started on its first step)."""
        state = self.state[i]
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = self._moment_views[i]
        state["step"] += 1
        return state

    def _lay_out_moments(self) -> None:
        """Put the moments into flat arrays laid out like the packed parameters, when the
        packing changed or a checkpoint was loaded."""
        if self._layout_version == self.flat.version:
            return
        (m_flat, m_views), (v_flat, v_views) = (
            self.flat.lay_out([state.get(key) for state in self.state]) for key in ("exp_avg", "exp_avg_sq"))
        self._flat_moments, self._moment_views = list(zip(m_flat, v_flat)), list(zip(m_views, v_views))
        for state, (m, v) in zip(self.state, self._moment_views):
            if state:
                state["exp_avg"], state["exp_avg_sq"] = m, v
        self._layout_version = self.flat.version

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._layout_version = None  # the loaded moments go into the flat arrays at the next step


class ExponentialMovingAverage:
    """An exponential moving average of parameters (Polyak averaging), for evaluation.

    After every optimizer step, ``update()`` moves each average towards its parameter:

        avg <- decay * avg + (1 - decay) * param

    so the average spans about ``1 / (1 - decay)`` steps (0.998: 500 steps). The
    averaged weights sit between the points that noisy training steps visit and often
    rank better than any one of them. ``with ema.average_parameters(): ...`` puts them
    into the model for evaluation or saving and puts the trained weights back after.
    The averages start as copies of the parameters and live on their device, as views
    into flat arrays laid out like the packed parameters (:mod:`tinyhydra.nn.flat`, shared
    with an optimizer over the same list), so ``update()`` is one expression per flat array.
    """

    def __init__(self, params, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.params, self.decay = list(params), float(decay)
        self.flat = flat.packing_of(self.params)
        self.averages = [param.data for param in self.params]  # copied by the layout
        self._layout_version = None
        self._lay_out()

    def _lay_out(self) -> None:
        self.flat.refresh()
        if self._layout_version != self.flat.version:
            self._flat_averages, self.averages = self.flat.lay_out(self.averages)
            self._layout_version = self.flat.version

    def update(self) -> None:
        self._lay_out()
        for group, average in zip(self.flat.groups, self._flat_averages):
            moving_average_formula(average, group.data, self.decay, 1.0 - self.decay)

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
        self._layout_version = None  # the loaded averages go into the flat arrays at the next update


@backend.elementwise
def moving_average_formula(xp, average, param, decay, one_minus_decay):
    """In place: avg <- decay * avg + (1 - decay) * param (one kernel on a GPU)."""
    average *= decay
    average += one_minus_decay * param
