"""Multi-label targets: reading them, per-label weights, thresholds and the sigmoid output.

A multi-label ``y`` gives every image any number of labels, as scikit-learn's
own classifiers (``MLPClassifier``, ``KNeighborsClassifier``) take it:

- an ``(n_samples, n_labels)`` 0/1 indicator matrix (numpy array, list of
  lists of 0/1, boolean array, scipy sparse matrix, or a pandas DataFrame,
  whose column names become ``classes_``); or
- a sequence of label collections, one per image (lists, tuples or sets of
  labels, e.g. ``[["cat"], ["cat", "dog"], []]``; also a pandas Series or a
  1-D object array of them), binarised with
  :class:`sklearn.preprocessing.MultiLabelBinarizer` (``classes_``: its sorted
  labels).

``sklearn.utils.multiclass.type_of_target`` tells an indicator matrix
(``"multilabel-indicator"``) from anything else; a 1-D ``y`` stays an ordinary
multi-class target. The network then has one logit per label, trained with a
loss whose spec declares ``multilabel=True``, and predicts independent sigmoid
probabilities (:func:`label_probabilities`).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.utils.multiclass import type_of_target

from .introspection import final_estimator
from .labels import check_label_values, plain

__all__ = ["DEFAULT_MULTILABEL_LOSS", "check_threshold", "indicator_over", "is_label_set", "label_probabilities",
           "label_positive_weights", "label_priors", "looks_multilabel", "multilabel_targets", "refuse_multilabel"]

#: the loss a multi-label fit uses when ``loss`` is left at its multi-class default ``"cross_entropy"``
DEFAULT_MULTILABEL_LOSS = "binary_cross_entropy"

_COLLECTIONS = (list, tuple, set, frozenset)


def label_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Independent sigmoid of every logit: a multi-label net's ``predict_nonlinearity`` (module level, so nets pickle)."""
    return torch.sigmoid(logits)


def _is_zero_one(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.bool_)) and value in (0, 1)


def _items(y: Any) -> list | None:
    """The per-image items of ``y`` when it is a 1-D sequence whose items are all label collections, else None."""
    if isinstance(y, np.ndarray):
        if y.ndim != 1 or y.dtype != object:
            return None
        items = list(y)
    elif hasattr(y, "to_numpy") and getattr(y, "ndim", None) == 1:  # a pandas Series
        items = list(y.to_numpy())
    elif isinstance(y, (list, tuple)):
        items = list(y)
    else:
        return None
    if not items or not all(isinstance(item, _COLLECTIONS) for item in items):
        return None
    return items


def _from_collections(items: list, n_images: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(classes, indicator)`` for label collections; None when the items are the rows of an indicator matrix."""
    if all(isinstance(item, (list, tuple)) and all(_is_zero_one(v) for v in item) for item in items):
        lengths = sorted({len(item) for item in items})
        if len(lengths) == 1:
            return None  # rows of 0/1: an indicator matrix
        raise ValueError(
            f"y's rows of 0/1 have different lengths ({lengths[0]} and {lengths[-1]}): an indicator matrix needs one "
            "0/1 column per label in every row. For the labels of each image, pass sets, e.g. [{0, 1}, {1}, set()], "
            "or the label names."
        )
    if len(items) != n_images:
        raise ValueError(f"X holds {n_images} images but y has {len(items)} label collections; they must match.")
    flat = [label for item in items for label in item]
    check_label_values(np.asarray(flat + [None], dtype=object)[:-1])  # no None/NaN, no mixed types
    binarizer = MultiLabelBinarizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown-class warnings cannot happen when fitting
        indicator = binarizer.fit_transform([list(item) for item in items])
    return np.asarray(binarizer.classes_), indicator


def _indicator(y: Any) -> tuple[np.ndarray | None, np.ndarray] | None:
    """``(column names or None, 2-D values)`` when ``y`` is 2-D with more than one column, else None."""
    columns = None
    if hasattr(y, "columns") and hasattr(y, "to_numpy"):  # a pandas DataFrame
        columns = np.asarray(list(y.columns))
        values = y.to_numpy()
    elif hasattr(y, "toarray") and getattr(y, "ndim", None) == 2:  # a scipy sparse matrix
        values = y.toarray()
    else:
        try:
            values = np.asarray(y)
        except ValueError:  # ragged nesting
            return None
    if values.ndim != 2 or values.shape[1] < 2:
        return None
    return columns, values


def multilabel_targets(y: Any, n_images: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(classes, Y)`` for a multi-label ``y``: the labels and a float32 ``(n_images, n_labels)`` 0/1 matrix.

    Returns None for any other ``y`` (a 1-D multi-class target), which the
    caller encodes as before.

    Raises
    ------
    ValueError
        For 2-D values other than 0/1, a number of rows other than
        ``n_images``, fewer than 2 labels, repeated column names, missing or
        mixed-type labels in label collections.
    """
    items = _items(y)
    found = _from_collections(items, n_images) if items is not None else None
    if found is not None:
        classes, values = found
    else:
        indicator = _indicator(y)
        if indicator is None:
            return None
        columns, values = indicator
        kind = type_of_target(values)
        if kind != "multilabel-indicator":
            shown = np.unique(values)[:6].tolist() if values.dtype != object else sorted({repr(v) for v in values.flat})[:6]
            raise ValueError(
                f"y is 2-D {values.shape} but not a 0/1 indicator matrix (scikit-learn reads it as {kind!r}; values "
                f"include {shown}). For multi-label targets give one 0/1 column per label; for one label per image "
                "pass a 1-D y."
            )
        found = np.unique(values)
        if not np.isin(found, (0, 1)).all():  # scikit-learn calls any two-valued matrix an indicator (-1/1, 0/5)
            raise ValueError(
                f"y is a 2-D label matrix but holds {found[:6].tolist()}; a multi-label y holds only 0 and 1 (1: the "
                "image carries the label). Map your values to 0/1 first, e.g. (Y > 0).astype(int)."
            )
        if len(values) != n_images:
            raise ValueError(f"X holds {n_images} images but y has {len(values)} rows; they must match.")
        classes = columns if columns is not None else np.arange(values.shape[1])
        if columns is not None and len(set(columns.tolist())) != len(columns):
            raise ValueError(f"y's columns name a label twice ({columns.tolist()}); give every label one column.")
    if len(classes) < 2:
        shown = plain(classes[0]) if len(classes) else None
        raise ValueError(
            f"y names {len(classes)} label(s) ({shown!r}); multi-label targets need at least 2. For a yes/no task pass "
            "a 1-D y of 0/1 or of two class names."
        )
    Y = np.asarray(values, dtype=np.float32)
    _warn_constant(classes, Y)
    return classes, Y


def indicator_over(y: Any, classes: np.ndarray, n_images: int | None = None) -> Any:
    """``y`` as a 0/1 matrix over ``classes`` when it is label collections (e.g. to score a fitted model); else ``y``.

    Raises
    ------
    ValueError
        For a label that is not among ``classes``.
    """
    items = _items(y)
    if items is None or _from_collections(items, len(items) if n_images is None else n_images) is None:
        return y
    known = set(classes.tolist())
    unknown = sorted({repr(plain(label)) for item in items for label in item if label not in known})
    if unknown:
        raise ValueError(f"y holds labels the model was not fitted on: {', '.join(unknown)}; its labels are "
                         f"{[plain(c) for c in classes]}.")
    return MultiLabelBinarizer(classes=list(classes)).fit_transform([list(item) for item in items])


def _warn_constant(classes: np.ndarray, Y: np.ndarray) -> None:
    positives = Y.sum(axis=0)
    never = [plain(c) for c, p in zip(classes, positives) if p == 0]
    always = [plain(c) for c, p in zip(classes, positives) if p == len(Y)]
    if never or always:
        parts = ([f"never set: {never}"] if never else []) + ([f"set on every image: {always}"] if always else [])
        warnings.warn(
            f"Some labels are constant in the training data ({'; '.join(parts)}): the network can only learn to "
            "predict them as constant. Add images that differ in those labels, or drop their columns.",
            UserWarning, stacklevel=4,
        )


def label_priors(Y: np.ndarray) -> torch.Tensor:
    """Each label's share of positive images (the priors a multi-label loss declaring ``needs_class_priors`` gets)."""
    return torch.as_tensor(np.asarray(Y, dtype=np.float64).mean(axis=0), dtype=torch.float32)


def label_positive_weights(class_weight: Any, classes: np.ndarray, Y: np.ndarray) -> torch.Tensor | None:
    """The weight of a positive of each label (``pos_weight``) for ``class_weight``.

    ``"balanced"``: ``negatives / positives`` of each label in the training
    data (each count at least 1, so a constant label gets a finite weight);
    a dict: ``{label: weight}``, 1 for labels left out; None: no weights.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str) and class_weight == "balanced":
        positives = np.asarray(Y, dtype=np.float64).sum(axis=0)
        negatives = len(Y) - positives
        return torch.as_tensor(np.maximum(negatives, 1.0) / np.maximum(positives, 1.0), dtype=torch.float32)
    known = classes.tolist()
    unknown = [k for k in class_weight if k not in known]
    if unknown:
        raise ValueError(f"class_weight names labels that are not in y: {sorted(map(plain, unknown), key=repr)}. "
                         f"Labels in y: {[plain(c) for c in known]}.")
    weights = [class_weight.get(c, 1.0) for c in known]
    bad = {plain(c): w for c, w in zip(known, weights)
           if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (np.isfinite(w) and w > 0)}
    if bad:
        raise ValueError(f"class_weight must give every label a positive, finite weight (the weight of its positive "
                         f"images); got {bad}. Leave a label out of the dict for weight 1.")
    return torch.as_tensor([float(w) for w in weights], dtype=torch.float32)


def check_threshold(threshold: Any, n_labels: int) -> float | np.ndarray:
    """``threshold`` checked: a float in (0, 1), or one such float per label (an array of length ``n_labels``).

    Raises
    ------
    ValueError, TypeError
        Naming the value and what is allowed.
    """
    if isinstance(threshold, (bool, np.bool_)) or isinstance(threshold, str):
        raise TypeError(f"threshold must be a float in (0, 1) or one per label, got {threshold!r}.")
    if isinstance(threshold, numbers.Real):
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1) (a label is predicted when its probability is at least "
                             f"threshold), got {threshold!r}.")
        return float(threshold)
    try:
        values = np.asarray(threshold, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a float in (0, 1) or a sequence of {n_labels} such floats (one per "
                        f"label), got {threshold!r}.") from None
    if values.shape != (n_labels,):
        raise ValueError(f"threshold has shape {values.shape}; give one float or {n_labels} floats, one per label "
                         "of classes_.")
    if not np.all((values > 0) & (values < 1)):
        raise ValueError(f"every threshold must be in (0, 1), got {values.tolist()}.")
    return values


def is_label_set(value: Any) -> bool:
    """Whether ``value`` is one image's collection of labels (a list, tuple, set or array), not one label."""
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def looks_multilabel(y: Any) -> bool:
    """Whether ``y`` holds several labels per image: a 2-D matrix, a DataFrame, or a sequence of label lists."""
    if hasattr(y, "toarray") or (hasattr(y, "columns") and getattr(y, "ndim", 1) == 2):
        return True
    if isinstance(y, np.ndarray) and y.dtype != object:
        return y.ndim == 2
    values = y.tolist() if hasattr(y, "tolist") else list(y)
    return any(is_label_set(v) for v in values)


def refuse_multilabel(estimator: Any, what: str, instead: str, y: Any = None) -> None:
    """Raise when ``what`` (a single-label measure) meets a multi-label model, or multi-label ``y``.

    Parameters
    ----------
    estimator : estimator or pipeline
        Refused when its final step has ``multilabel_`` True.
    what : str
        What refuses, e.g. ``"corruption_report"``.
    instead : str
        What to use instead (one sentence).
    y : array-like or None
        Also refused when it is an indicator matrix or one collection of labels per image.

    Raises
    ------
    ValueError
        Naming ``what``, why and ``instead``.
    """
    shape = getattr(y, "shape", ())
    column = len(shape) == 2 and shape[1] == 1  # one label per image, as a column
    if getattr(final_estimator(estimator), "multilabel_", False) or (y is not None and not column
                                                                     and looks_multilabel(y)):
        raise ValueError(f"{what}: single-label models and labels only (one class per image), and these are several "
                         f"labels per image (multi-label). {instead}")

