"""Checks of class labels that scikit-learn would report in its own terms, or not at all.

``check_label_values`` catches what makes :class:`~sklearn.preprocessing.LabelEncoder`
fail with an unrelated message: missing labels (``None``, NaN), which
sklearn calls a "regression target", and labels of mixed types (``1`` and
``"cat"``), which fail with "'<' not supported between instances of 'int' and
'str'". ``plain`` shows numpy scalars as the plain values users wrote.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["check_label_values", "plain"]


def plain(value: Any) -> Any:
    """``value`` as a plain Python value (``np.str_('cat')`` -> ``'cat'``, ``np.int64(3)`` -> ``3``), inside dicts,
    lists and tuples too."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def _kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, (str, bytes)):
        return "string"
    return type(value).__name__


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def check_label_values(y: np.ndarray) -> None:
    """Raise a ``ValueError`` for missing labels or labels that mix types.

    Parameters
    ----------
    y : numpy.ndarray of shape (n_samples,)
        The labels as given to ``fit``.
    """
    if y.dtype.kind == "f":
        missing = np.flatnonzero(np.isnan(y))
    elif y.dtype == object:
        missing = np.flatnonzero([_is_missing(v) for v in y])
    else:
        return
    if len(missing):
        shown = ", ".join(str(int(i)) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(
            f"y has {len(missing)} missing label(s) (None or NaN) at position(s) {shown}. Every image needs a class: "
            "drop the unlabelled images or label them."
        )
    if y.dtype != object:
        return
    examples: dict[str, Any] = {}
    for value in y:
        examples.setdefault(_kind(value), value)
    if len(examples) > 1:
        shown = " and ".join(f"{kind} ({plain(value)!r})" for kind, value in examples.items())
        raise ValueError(
            f"y mixes label types: {shown}. Use one type for every label, e.g. y = [str(label) for label in y]."
        )
