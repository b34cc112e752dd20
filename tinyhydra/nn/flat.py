"""Parameters packed into one flat buffer per device and dtype, so an update touches them all at once.

An optimizer applies the same elementwise formula to every parameter. Run parameter
by parameter, that is one chain of array operations per parameter (on a GPU, one
chain of kernel launches each, for some thirty small parameters); run on one flat
array that holds them all, it is one chain.

``FlatParameters(params)`` copies the parameters into a flat array per (device,
dtype) group and makes each ``param.data`` a view into it, so an in-place update of
the flat array updates every parameter. Each parameter also gets a view into a flat
gradient array: ``Tensor.backward`` writes a parameter's first gradient into that
view instead of allocating one, so after backward the flat gradient holds them all::

    flat data (N,)  = [ p0.ravel() | p1.ravel() | ... ]      p_i.data = flat[o_i:o_i+n_i].reshape(shape_i)
    flat grad (N,)  = [ g0.ravel() | g1.ravel() | ... ]      written by Tensor.backward

So ``param.grad`` of a packed parameter is that view. ``zero_grad()`` (of the optimizer
or the module) gives each group a fresh flat gradient (:func:`forget_grads`) rather than
zeroing it in place, so a ``param.grad`` kept from an earlier step keeps its values.

Anything that replaces ``param.data`` instead of writing into it (``Module.to``,
``Module.to_dtype``, ``Module.load_state_dict``, swapping in averaged weights) cuts
that parameter loose from the flat array. :meth:`FlatParameters.refresh` notices
(one identity check per parameter) and packs again from the current arrays, on their
current device and dtype; ``version`` then changes, which tells the owners of state
laid out like the parameters (Adam's moments, the moving average) to lay it out again.
"""
from __future__ import annotations

from ..engine import backend
from ..engine.tensor import Tensor

__all__ = ["FlatParameters", "packing_of", "forget_grads", "parameter_list"]


def parameter_list(params, owner: str) -> list:
    """``params`` (an iterable of Tensors that require grad, each once) as a list, or an
    error that says what ``owner`` (an optimizer) got instead."""
    if isinstance(params, Tensor) or not hasattr(params, "__iter__"):
        what = "a Module" if hasattr(params, "parameters") else type(params).__name__
        raise TypeError(f"{owner}: params is {what}, not a list of parameters; pass "
                        f"model.parameters()")
    params = list(params)
    if not params:
        raise ValueError(f"{owner} got an empty parameter list")
    for i, param in enumerate(params):
        if not isinstance(param, Tensor) or not param.requires_grad:
            raise TypeError(f"{owner}: parameter {i} is not a Tensor that requires grad "
                            f"(got {type(param).__name__}); pass model.parameters()")
    if len({id(param) for param in params}) != len(params):
        raise ValueError(f"{owner}: a parameter appears twice in params; pass each once "
                         f"(model.parameters() lists a tied weight once)")
    return params


class Group:
    """The parameters of one (device, dtype): their indices, flat data and flat gradient."""

    __slots__ = ("indices", "data", "grad")

    def __init__(self, indices, data, grad):
        self.indices, self.data, self.grad = indices, data, grad


class FlatParameters:
    """A list of parameters whose ``data`` (and gradients) are views into flat arrays."""

    def __init__(self, params):
        self.params = list(params)
        if len({id(param) for param in self.params}) != len(self.params):
            raise ValueError("a parameter appears twice in the list; pass each parameter once "
                             "(model.parameters() lists a tied weight once)")
        self.version = 0
        self.pack()

    def pack(self) -> None:
        """(Re)build the flat arrays from each parameter's current data and gradient."""
        by_key = {}
        for i, param in enumerate(self.params):
            by_key.setdefault((param.device, param.dtype), []).append(i)
        self.groups, self.views, self.grad_views = [], [None] * len(self.params), [None] * len(self.params)
        for (_, dtype), indices in by_key.items():
            xp = backend.get_array_module(self.params[indices[0]].data)
            total = sum(self.params[i].size for i in indices)
            data, grad = xp.empty(total, dtype=dtype), xp.zeros(total, dtype=dtype)
            for i, view, grad_view in zip(indices, self._split(data, indices), self._split(grad, indices)):
                param = self.params[i]
                view[...] = param.data
                if param.grad is not None:
                    grad_view[...] = param.grad
                    param.grad = grad_view
                param.data = view
                param._packed = (self, view, grad_view)
                self.views[i], self.grad_views[i] = view, grad_view
            self.groups.append(Group(indices, data, grad))
        self.version += 1

    def _split(self, flat, indices):
        """Views of ``flat`` shaped like the parameters ``indices``, back to back."""
        views, offset = [], 0
        for i in indices:
            shape, size = self.params[i].shape, self.params[i].size
            views.append(flat[offset:offset + size].reshape(shape))
            offset += size
        return views

    def renew_grads(self) -> None:
        """A fresh flat gradient per group, and fresh views of it: the old views, which a
        caller may hold as ``param.grad``, keep their values."""
        for group in self.groups:
            xp = backend.get_array_module(group.grad)
            group.grad = xp.zeros_like(group.grad)
            for i, grad_view in zip(group.indices, self._split(group.grad, group.indices)):
                self.grad_views[i] = grad_view
                param = self.params[i]
                if param._packed is not None and param._packed[0] is self:
                    param._packed = (self, param._packed[1], grad_view)

    def is_current(self) -> bool:
        """True while every ``param.data`` is still its view into the flat arrays."""
        return all(param.data is view for param, view in zip(self.params, self.views))

    def refresh(self) -> bool:
        """Pack again if some ``param.data`` was replaced; True if it packed."""
        if self.is_current():
            return False
        self.pack()
        return True

    def gather_grads(self) -> bool:
        """Put every gradient into the flat gradient array (a copy only for a gradient that
        was assigned by hand); False, copying nothing more, at the first parameter without one."""
        for param, grad_view in zip(self.params, self.grad_views):
            grad = param.grad
            if grad is grad_view:
                continue
            if grad is None:
                return False
            if grad.shape != param.shape:
                raise ValueError(f"gradient of shape {grad.shape} for a parameter of shape {param.shape}")
            grad_view[...] = grad
            param.grad = grad_view
        return True

    def lay_out(self, arrays):
        """Flat arrays (one per group) laid out like the parameters, holding ``arrays`` (one per
        parameter, None for zeros) on each group's device and dtype; and the per-parameter views."""
        flats, views = [], [None] * len(self.params)
        for group in self.groups:
            xp, device = backend.get_array_module(group.data), backend.device_of(group.data)
            flat = xp.zeros_like(group.data)
            for i, view in zip(group.indices, self._split(flat, group.indices)):
                if arrays[i] is not None:
                    view[...] = backend.to_device(arrays[i], device)  # and cast to the group's dtype
                views[i] = view
            flats.append(flat)
        return flats, views


def forget_grads(params) -> None:
    """Set every ``param.grad`` to None and give their packings fresh flat gradients."""
    packings = {}
    for param in params:
        param.grad = None
        if param._packed is not None:
            packings[id(param._packed[0])] = param._packed[0]
    for packing in packings.values():
        packing.renew_grads()


def packing_of(params) -> FlatParameters:
    """The packing that holds exactly ``params``, in this order, if there is one (an optimizer
    and a moving average over ``model.parameters()`` share it), else a new one.

    A parameter is in one packing at a time: a new packing over another list that shares
    parameters takes them over, and the old one packs them back at its next refresh
    (correct, but a copy per step while both are in use)."""
    params = list(params)
    packed = getattr(params[0], "_packed", None) if params else None
    if packed is not None:
        packing = packed[0]
        if len(packing.params) == len(params) and all(a is b for a, b in zip(packing.params, params)):
            return packing
    return FlatParameters(params)
