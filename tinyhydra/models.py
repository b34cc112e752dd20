"""``tinyhydra.models``: the recommenders live in :mod:`tinyhydra.rec.models`."""
from .rec.models import *  # noqa: F403
from .rec.models import __all__  # noqa: F401
