"""Choosing which images a figure shows (a few of every class, right and wrong), and how they are drawn."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_maps", "display_images", "diverse_examples", "take_rows"]


def diverse_examples(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Indices of up to ``n`` images spread over the true classes, alternating misclassified and correct ones.

    Classes take turns (in the order of ``np.unique``); within a class the
    first misclassified image comes before the first correct one, and so on,
    so a grid of ``n`` shows every class it can and the model's mistakes
    beside its successes. Deterministic: no randomness.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    queues = []
    for label in np.unique(y_true):
        members = np.flatnonzero(y_true == label)
        wrong = members[y_pred[members] != label]
        right = members[y_pred[members] == label]
        order = [i for pair in zip(wrong, right) for i in pair]
        longer = wrong if len(wrong) > len(right) else right
        queues.append(order + list(longer[min(len(wrong), len(right)):]))
    chosen: list[int] = []
    depth = 0
    while len(chosen) < n and any(depth < len(q) for q in queues):
        chosen += [q[depth] for q in queues if depth < len(q)][: n - len(chosen)]
        depth += 1
    return np.asarray(chosen, dtype=np.int64)


def take_rows(X, indices: np.ndarray):
    """Rows ``indices`` of ``X``: an array, a pandas object, or a list of paths / PIL images."""
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    if isinstance(X, np.ndarray):
        return X[indices]
    return [X[i] for i in indices]


def display_images(estimator: Any, X: Any, indices: np.ndarray) -> np.ndarray:
    """Rows ``indices`` of ``X`` (arrays or files) as NHWC floats in [0, 1], each stretched to its own range."""
    from .data import as_image_data
    from .images import read_image, stack_images

    data = as_image_data(X, fitted_shape=estimator.image_shape_, estimator_name=type(estimator).__name__)
    images = data.tensor[indices] if data.in_memory else stack_images(
        [read_image(data.paths[i], data.image_shape) for i in indices])
    images = images.float().numpy()
    flat = images.reshape(len(images), -1)
    low, high = flat.min(axis=1)[:, None, None, None], flat.max(axis=1)[:, None, None, None]
    return ((images - low) / np.maximum(high - low, 1e-12)).transpose(0, 2, 3, 1)


def check_maps(maps: Any, function: str) -> np.ndarray | None:
    """``maps`` as an ``(n, H, W)`` float array, or a TypeError saying that the third argument is not the labels.

    ``plot_cam(clf, X, y)`` reads like the other figures' argument order but
    passes the labels as ``maps``: the message names ``y=``.
    """
    if maps is None:
        return None
    try:
        values = np.asarray(maps, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 3:
        raise TypeError(f"{function}'s third argument is maps, the (n, H, W) explanation maps of explain.grad_cam or "
                        f"occlusion_sensitivity (got {type(maps).__name__} of shape {np.shape(maps) if values is not None else '?'}); "
                        f"to pick the images by their true labels pass them by name: {function}(clf, X, y=labels).")
    return values

