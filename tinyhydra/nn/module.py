"""Module: parameters with bookkeeping, the base class of every layer and model.

A :class:`Module` is PyTorch-like: its :class:`Parameter` attributes and its
sub-module attributes (directly, in a list, or in a :class:`ModuleList`) are found
by looking at ``vars(self)``, so there is no registration step. ``module(x)`` calls
``module.forward(x)``. Traversal (``named_parameters``), modes (``train``/``eval``),
device and dtype moves (``to``, ``to_dtype``), checkpoints (``state_dict``) and
``repr`` live here; the layers are in :mod:`tinyhydra.nn`.
"""
from __future__ import annotations

import numpy as np

from ..engine import backend
from ..engine.tensor import Tensor
from . import flat

__all__ = ["Parameter", "Module", "ModuleList"]


class Parameter(Tensor):
    """A leaf Tensor that a Module owns and an optimizer updates (always requires grad)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device='{self.device}')"


class Module:
    """Base class of every layer and model (see the module docstring)."""

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __setattr__(self, name, value):
        # as PyTorch: a plain array or Tensor over a Parameter would drop it from parameters()
        if isinstance(vars(self).get(name), Parameter) and not (
                value is None or isinstance(value, Parameter)):
            raise TypeError(
                f"cannot assign {type(value).__name__} to {type(self).__name__}.{name}, a "
                f"Parameter: assign a Parameter, or change its values with "
                f"{name}.data = array")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------- traversal
    def _named_members(self):
        """(name, value) for each Parameter and sub-module attribute, in attribute order;
        modules in a list or tuple attribute are named ``name.i``."""
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_children(self):
        """(name, module) for each direct sub-module."""
        return ((name, m) for name, m in self._named_members() if isinstance(m, Module))

    def children(self):
        return (child for _, child in self.named_children())

    def modules(self):
        """This module and every module below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) pairs, e.g. ``blocks.0.attention.query.weight``.

        A Parameter reachable twice (a tied weight) is listed once, under its first name.
        """
        seen = set()
        for name, param in self._named_parameters(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param

    def _named_parameters(self, prefix):
        for name, member in self._named_members():
            if isinstance(member, Parameter):
                yield prefix + name, member
            else:
                yield from member._named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [param for _, param in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(param.size for param in self.parameters())

    # ----------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set the training flag (dropout on) of this module and all below it."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the gradients; a ``param.grad`` kept from before keeps its values."""
        flat.forget_grads(self.parameters())

    # ------------------------------------------------------ device and dtype
    @property
    def device(self) -> str:
        """'cpu' or 'gpu': where the parameters live ('cpu' for a module without any)."""
        for param in self.parameters():
            return param.device
        return "cpu"

    def to(self, device: str) -> Module:
        """Move every parameter (and gradient) to ``device`` IN PLACE; returns ``self``.

        Only ``param.data`` is replaced, so an optimizer built earlier still holds the
        same Parameter objects.
        """
        backend.check_device(device)
        for param in self.parameters():
            param.data = backend.to_device(param.data, device)
            if param.grad is not None:
                param.grad = backend.to_device(param.grad, device)
        return self

    def to_dtype(self, dtype) -> Module:
        """Cast every parameter to ``dtype`` in place (np.float64 for gradcheck); returns self."""
        for param in self.parameters():
            param.data = param.data.astype(dtype, copy=False)
            param.grad = None
        return self

    # ---------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """name -> host ``numpy.ndarray`` copy of each parameter."""
        return {name: backend.as_numpy(param.data).copy()
                for name, param in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays from ``state`` (name -> array) into the parameters, on their device.

        Shapes must match. With ``strict`` the names must match exactly too; without it
        missing and unexpected names are skipped. Values are cast to each parameter's dtype.
        """
        params = dict(self.named_parameters())
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict into {type(self).__name__}: state must be a dict "
                            f"name -> array (model.state_dict()), got {type(state).__name__}")
        state = {name: _as_checkpoint_array(name, value) if name in params else value
                 for name, value in state.items()}
        if strict:
            missing = sorted(set(params) - set(state))
            unexpected = sorted(set(state) - set(params))
            if missing or unexpected:
                raise KeyError(
                    f"load_state_dict into {type(self).__name__}: missing keys {missing}, "
                    f"unexpected keys {unexpected}"
                )
        mismatched = [
            f"{name}: checkpoint {tuple(np.shape(state[name]))} vs model {param.shape}"
            for name, param in params.items()
            if name in state and tuple(np.shape(state[name])) != param.shape
        ]
        if mismatched:
            raise ValueError(
                f"load_state_dict into {type(self).__name__}: shape mismatch for "
                + "; ".join(mismatched)
            )
        for name, param in params.items():
            if name in state:
                xp = backend.get_array_module(param.data)
                # xp.array copies: the module never shares memory with the checkpoint
                param.data = xp.array(backend.as_numpy(state[name]), dtype=param.dtype)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        children = [f"({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = ([self.extra_repr()] if self.extra_repr() else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _as_checkpoint_array(name, value):
    """A state_dict value (array, Tensor, Parameter, nested lists) as an array of numbers,
    or a TypeError naming its key."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = value
    else:
        try:
            array = np.asarray(value)
        except ValueError:  # ragged nested lists
            raise TypeError(f"load_state_dict: state[{name!r}] is a ragged nested list; it "
                            f"must be an array of one shape") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"load_state_dict: state[{name!r}] has dtype {array.dtype}; it must be "
                        f"an array of numbers")
    return array


class ModuleList(Module):
    """A list of modules whose parameters are named ``0.weight``, ``1.weight``, ..."""

    def __init__(self, modules=()):
        super().__init__()
        self._items = list(modules)
        for item in self._items:
            if not isinstance(item, Module):
                raise TypeError(f"ModuleList holds Modules only, got {type(item).__name__}")

    def _named_members(self):
        return ((str(i), item) for i, item in enumerate(self._items))

    def append(self, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules only, got {type(module).__name__}")
        self._items.append(module)

    def __getitem__(self, index):
        return self._items[index]

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)
