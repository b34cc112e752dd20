"""The registry of models: ``MODELS`` maps a CLI name (``"hydrarec-uni"``) to a
:class:`ModelEntry`, the class and what the training script, the tests and the tables need
to know about it without building one.

:func:`register_model` is the only way in (the models of :mod:`.models` use it too), so a
new model is one class with one decorator: ``--model`` choices and ``--help``, the direction
(causal or bidirectional recipe), whether ``--heads`` applies, the notebooks' and tests'
model lists all read ``MODELS`` (docs/extending.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..nn.attention_layers import ATTENTION_KINDS

__all__ = ["ModelEntry", "MODELS", "register_model", "build_model"]


@dataclass(frozen=True)
class ModelEntry:
    """One entry of ``MODELS``.

    model_class:    a :class:`~tinyhydra.rec.models.SequentialRecommender` subclass,
                    ``model_class(num_items, **kwargs)``;
    summary:        one line (by default the first sentence of the class docstring);
    causal:         the class's ``causal``: causal (SASRec-style) or bidirectional
                    (BERT4Rec-style, cloze training, a [MASK] token);
    attention_kind: the class's ``attention_kind``, a key of ``nn.ATTENTION_KINDS``;
    takes_heads:    whether that kind takes ``num_heads`` (decayed Hydra: one per feature).
    """

    name: str
    model_class: type
    summary: str
    causal: bool
    attention_kind: str
    takes_heads: bool

    @property
    def direction(self) -> str:
        return "causal" if self.causal else "bidirectional"


MODELS: dict[str, ModelEntry] = {}


def _first_sentence(doc: str | None) -> str:
    text = " ".join((doc or "").split("\n\n")[0].split())  # the first paragraph on one line
    return re.split(r"(?<!\.)\.(?=\s|$)", text, maxsplit=1)[0] + "."  # "1 .. max_len" is no full stop


def register_model(name: str, summary: str | None = None):
    """Class decorator: registers the model class under the CLI ``name`` (lower case) in
    ``MODELS``. Its ``attention_kind`` must be registered and support its direction."""
    def register(model_class: type) -> type:
        kind = ATTENTION_KINDS.get(model_class.attention_kind)
        entry = ModelEntry(name, model_class, summary or _first_sentence(model_class.__doc__),
                           model_class.causal, model_class.attention_kind,
                           kind is not None and kind.takes_heads)
        if name in MODELS or name != name.lower():
            raise ValueError(f"model name {name!r} is taken or not lower case; pick another")
        if kind is None or entry.direction not in kind.directions:
            raise ValueError(f"{model_class.__name__}: attention kind {entry.attention_kind!r} must be "
                             f"registered (nn.register_attention) and support {entry.direction} attention")
        MODELS[name] = entry
        return model_class
    return register


def build_model(name: str, num_items: int, **kwargs):
    """The model for a CLI ``name`` (a key of ``MODELS``), keyword arguments passed on.

    ``build_model("hydrarec-uni", 3416, dim=50)`` is ``HydraRecUni(3416, dim=50)``.
    """
    key = name.lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[key].model_class(num_items, **kwargs)
