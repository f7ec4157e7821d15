"""Every exception and warning type sklearn-imgcls raises, importable from one place.

Mistakes in what was passed subclass the builtin a scikit-learn user expects
(``ValueError`` / ``TypeError``), so ``except ValueError`` keeps working; a
broken or clashing plugin raises :class:`PluginError` or
:class:`DuplicateComponentError` (``RuntimeError``). Catch these to tell one
problem from another::

    from sklearn_imgcls.errors import InvalidImagesError

The classes are defined next to the code that raises them (the input errors
shared by several internal modules in ``sklearn_imgcls._core.errors``).
"""

from __future__ import annotations

from ._core.divergence import TrainingDivergedError
from ._core.errors import ImageInputError, ImageInputTypeError, NonFiniteOutputError
from ._core.images import ImageReadError, InvalidImagesError
from ._core.weights import WeightsError
from .datasets import InvalidImagesWarning
from .plugin.discovery import PluginError
from .plugin.registry import DuplicateComponentError, UnknownComponentError

__all__ = [
    "DuplicateComponentError",
    "ImageInputError",
    "ImageInputTypeError",
    "ImageReadError",
    "InvalidImagesError",
    "InvalidImagesWarning",
    "NonFiniteOutputError",
    "PluginError",
    "TrainingDivergedError",
    "UnknownComponentError",
    "WeightsError",
]
