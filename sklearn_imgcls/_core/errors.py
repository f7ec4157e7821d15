"""Exception types for unreadable input and broken outputs, so callers (and tests) can tell them by type.

Users import them from :mod:`sklearn_imgcls.errors`, which lists every exception the package raises.

Each subclasses the builtin a scikit-learn user expects (``ValueError`` /
``TypeError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["ImageInputError", "ImageInputTypeError", "NonFiniteOutputError"]


class ImageInputError(ValueError):
    """``X`` (or ``image_shape``) cannot be read as images: wrong shape, empty, NaN/inf, sizes that disagree."""


class ImageInputTypeError(TypeError):
    """``X`` is of a kind the estimators do not accept: sparse, a single path, mixed paths and arrays, not numbers."""


class NonFiniteOutputError(ValueError):
    """The network's outputs are NaN or infinite for some images (overflowing inputs or broken weights)."""
