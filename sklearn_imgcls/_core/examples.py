"""Choosing which images a figure shows: a few of every class, right and wrong."""

from __future__ import annotations

import numpy as np

__all__ = ["diverse_examples", "take_rows"]


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
