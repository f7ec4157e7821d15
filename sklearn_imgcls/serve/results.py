"""What the server answers: predictions per image, and a description of the model, as plain JSON values."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .._core.introspection import trained_backbone

__all__ = ["describe_model", "format_predictions", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and sets made plain JSON values (others as ``str``)."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def format_predictions(
    proba: np.ndarray,
    names: Sequence[str],
    classes: Sequence[Any],
    top_k: int,
    multilabel: bool = False,
    threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """One JSON object per image: its file name, its top-k classes and what the model predicts.

    Parameters
    ----------
    proba : numpy.ndarray of shape (n_images, n_classes)
        ``predict_proba`` rows (softmax; for a multi-label model one sigmoid per label).
    names : sequence of str
        The uploaded file names.
    classes : sequence
        ``classes_``, one per column of ``proba``.
    top_k : int
        Classes listed per image, most probable first (at most ``n_classes``).
    multilabel : bool
        A multi-label model: ``labels`` lists every label whose probability
        is at least ``threshold``.
    threshold : float
        The model's ``threshold``.

    Returns
    -------
    list of dict
        ``{"file", "label"`` (single-label) or ``"labels"`` (multi-label),
        ``"top": [{"class", "probability"}, ...]}``.
    """
    classes = jsonable(list(classes))
    k = max(1, min(int(top_k), len(classes)))
    results = []
    for name, row in zip(names, np.asarray(proba, dtype=np.float64)):
        order = np.argsort(-row, kind="stable")[:k]
        result: dict[str, Any] = {"file": name}
        if multilabel:
            result["labels"] = [classes[j] for j in np.flatnonzero(row >= threshold)]
        else:
            result["label"] = classes[int(np.argmax(row))]
        result["top"] = [{"class": classes[j], "probability": float(row[j])} for j in order]
        results.append(result)
    return results


def describe_model(estimator: Any, version: str) -> dict[str, Any]:
    """The model's class, classes, input shape, backbone, training choices and the package version."""
    trained_with = getattr(estimator, "trained_with", None)
    return jsonable({
        "model": type(estimator).__name__,
        "classes": list(estimator.classes_),
        "n_classes": len(estimator.classes_),
        "multilabel": bool(getattr(estimator, "multilabel_", False)),
        "threshold": getattr(estimator, "threshold", None),
        "image_shape": list(estimator.image_shape_),
        "backbone": trained_backbone(estimator),
        "trained_with": trained_with() if callable(trained_with) else {},
        "sklearn_imgcls_version": version,
    })
