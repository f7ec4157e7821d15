"""Figures for a multi-label classifier (several labels per image): one view per label.

The multiclass figures of :mod:`sklearn_imgcls.plot` hand a multi-label model
to these (``plot_confusion_matrix`` -> :func:`plot_label_confusion`, and so
on), so either name works. Every function returns a
:class:`matplotlib.figure.Figure`; those that need predictions take an
optional ``proba`` (``estimator.predict_proba(X)``) to share one inference
pass. True labels ``y`` take any form ``fit`` accepts: an ``(n, k)`` 0/1
matrix, a DataFrame with the labels as columns, or one list of labels per image.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np

from ._core.examples import display_images
from .metrics import predictions
from .metrics_multilabel import (is_multilabel, label_indicator, label_names, labels_to_indicator,
                                 looks_multilabel)

__all__ = ["multilabel_alternative", "plot_label_cam", "plot_label_confusion", "plot_label_distribution",
           "plot_label_precision_recall", "plot_label_roc", "plot_label_top_losses"]


def multilabel_alternative(alternative: Callable) -> Callable:
    """Decorate a multiclass figure so that a multi-label model (or multi-label ``y``) is drawn by ``alternative``.

    The first argument decides: a fitted estimator with ``multilabel_``, or
    (for figures of labels only) targets with several labels per image.
    """
    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            first = args[0] if args else kwargs.get("estimator", kwargs.get("y"))
            multi = is_multilabel(first) if hasattr(first, "classes_") else first is not None and looks_multilabel(first)
            return (alternative if multi else function)(*args, **kwargs)

        return dispatch

    return decorate


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plotting needs matplotlib: pip install 'sklearn-imgcls[plot]'.") from None
    return plt


def _panels(count: int, cols: int, width: float, height: float):
    plt = _pyplot()
    cols = max(1, min(count, cols))
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    return fig, axes.ravel()


def _joined(estimator: Any, row: np.ndarray) -> str:
    names = [str(label) for label, on in zip(estimator.classes_, row) if on]
    return ";".join(names) if names else "(none)"


def plot_label_confusion(estimator: Any, X: Any, y: Any, *, normalize: str | None = None, proba=None):
    """One 2x2 confusion matrix per label (:func:`sklearn.metrics.multilabel_confusion_matrix`).

    ``normalize`` as in :class:`~sklearn.metrics.ConfusionMatrixDisplay`:
    None (counts), ``"true"``, ``"pred"`` or ``"all"``.
    """
    from sklearn.metrics import ConfusionMatrixDisplay, multilabel_confusion_matrix

    y_pred, _ = predictions(estimator, X, proba)
    y_true = label_indicator(estimator, y)
    matrices = multilabel_confusion_matrix(y_true, y_pred).astype(float)
    if normalize is not None:
        axis = {"true": (2,), "pred": (1,), "all": (1, 2)}.get(normalize)
        if axis is None:
            raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}.")
        matrices = matrices / np.maximum(matrices.sum(axis=axis, keepdims=True), 1)
    fig, axes = _panels(len(matrices), 4, 2.8, 2.8)
    for ax, label, matrix in zip(axes, estimator.classes_, matrices):
        ConfusionMatrixDisplay(matrix if normalize else matrix.astype(int), display_labels=["no", "yes"]).plot(
            ax=ax, colorbar=False, values_format=".2f" if normalize else "d")
        ax.set_title(str(label), fontsize=10)
    fig.suptitle("Confusion matrix per label" + (f" (normalised over {normalize})" if normalize else " (counts)"))
    fig.tight_layout()
    return fig


def _per_label_curves(estimator: Any, X: Any, y: Any, proba: Any, kind: str):
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    _, proba = predictions(estimator, X, proba)
    y_true = label_indicator(estimator, y)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    display = PrecisionRecallDisplay if kind == "pr" else RocCurveDisplay
    for j, label in enumerate(estimator.classes_):
        if y_true[:, j].max() == y_true[:, j].min() and (kind == "roc" or y_true[:, j].max() == 0):
            continue  # no curve without positives (and, for ROC, negatives)
        display.from_predictions(y_true[:, j], proba[:, j], name=f"{label}", ax=ax)
    if y_true.any() and not y_true.all():
        display.from_predictions(y_true.ravel(), proba.ravel(), name="micro-average", ax=ax,
                                 curve_kwargs={"color": "black", "linestyle": "--"})
    ax.legend(fontsize="small", loc="lower left" if kind == "pr" else "lower right")
    return fig, ax


def plot_label_precision_recall(estimator: Any, X: Any, y: Any, *, proba=None):
    """Precision-recall curve (and average precision) of every label that occurs in ``y``, and the micro-average."""
    fig, ax = _per_label_curves(estimator, X, y, proba, "pr")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curve per label")
    fig.tight_layout()
    return fig


def plot_label_roc(estimator: Any, X: Any, y: Any, *, proba=None):
    """ROC curve of every label both present and absent somewhere in ``y``, and the micro-average."""
    fig, ax = _per_label_curves(estimator, X, y, proba, "roc")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title("ROC curve per label")
    fig.tight_layout()
    return fig


def plot_label_distribution(y: Any, y_test: Any = None, *, labels: Any = None):
    """Images per label (training, and test when given), labels per image, and how often labels occur together.

    Parameters
    ----------
    y, y_test : multi-label targets (0/1 matrix, DataFrame or label lists)
    labels : sequence, optional
        The label names in column order (e.g. ``estimator.classes_``);
        default: a DataFrame's columns, ``0..k-1`` for a matrix, else the
        sorted labels found.
    """
    plt = _pyplot()
    labels = list(label_names(y, y_test) if labels is None else labels)
    train = labels_to_indicator(y, labels)
    test = None if y_test is None else labels_to_indicator(y_test, labels)
    names = [str(label) for label in labels]
    fig, (bars, sizes, pairs) = plt.subplots(1, 3, figsize=(max(13.0, 1.2 * len(labels) + 9), 4.2),
                                             gridspec_kw={"width_ratios": [2, 1, 1.6]})
    width = 0.4 if test is not None else 0.8
    positions = np.arange(len(labels))
    bars.bar(positions - (width / 2 if test is not None else 0), train.sum(axis=0), width, label="train")
    if test is not None:
        bars.bar(positions + width / 2, test.sum(axis=0), width, label="test")
        bars.legend()
    bars.set_xticks(positions, names, rotation=45)
    bars.set_ylabel("images")
    bars.set_title("Images per label")
    bars.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
    per_image = train.sum(axis=1)
    counts = np.bincount(per_image, minlength=len(labels) + 1)
    sizes.bar(np.arange(len(counts)), counts)
    sizes.set_xlabel("labels on the image")
    sizes.set_ylabel("images")
    sizes.set_title("Labels per image")
    sizes.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    sizes.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
    together = train.T @ train
    pairs.imshow(together, cmap="Blues")
    for (i, j), value in np.ndenumerate(together):
        pairs.text(j, i, str(value), ha="center", va="center", fontsize=8,
                   color="white" if value > together.max() / 2 else "black")
    pairs.set_xticks(positions, names, rotation=45)
    pairs.set_yticks(positions, names)
    pairs.set_title("Images with both labels")
    fig.tight_layout()
    return fig





def _show(ax: Any, image: np.ndarray) -> None:
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image[..., :3], cmap="gray", vmin=0, vmax=1)


def plot_label_top_losses(estimator: Any, X: Any, y: Any, *, n: int = 9, proba=None):
    """The ``n`` images with the highest binary cross-entropy (mean over labels): true and predicted labels."""
    y_pred, proba = predictions(estimator, X, proba)
    y_true = label_indicator(estimator, y)
    p = np.clip(proba, 1e-12, 1 - 1e-12)
    losses = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).mean(axis=1)
    order = np.argsort(-losses, kind="stable")[: max(1, min(n, len(losses)))]
    images = display_images(estimator, X, order)
    fig, axes = _panels(len(order), 5, 2.4, 3.3)
    for ax, image, i in zip(axes, images, order):
        _show(ax, image)
        ax.axis("off")
        ax.set_title(f"true {_joined(estimator, y_true[i])}\npred {_joined(estimator, y_pred[i])}\n"
                     f"loss {losses[i]:.2f}", fontsize=8)
    fig.suptitle("Top losses: the images the model gets most wrong (binary cross-entropy)")
    fig.tight_layout()
    return fig


def _label_examples(y_true: np.ndarray | None, y_pred: np.ndarray, proba: np.ndarray, n: int) -> list[tuple[int, int]]:
    """``(image, label)`` pairs, labels taking turns: images with the label, missed ones beside found ones
    (with ``y_true``), else the images most confidently given the label."""
    queues = []
    for j in range(proba.shape[1]):
        if y_true is None:
            queues.append(list(np.argsort(-proba[:, j], kind="stable")))
            continue
        members = np.flatnonzero(y_true[:, j])
        missed, found = members[y_pred[members, j] == 0], members[y_pred[members, j] == 1]
        order = [i for pair in zip(missed, found) for i in pair]
        longer = missed if len(missed) > len(found) else found
        queues.append(order + list(longer[min(len(missed), len(found)):]))
    pairs: list[tuple[int, int]] = []
    depth = 0
    while len(pairs) < n and any(depth < len(q) for q in queues):
        pairs += [(int(q[depth]), j) for j, q in enumerate(queues) if depth < len(q)][: n - len(pairs)]
        depth += 1
    return pairs


def plot_label_cam(estimator: Any, X: Any, maps: np.ndarray | None = None, *, n: int = 8, alpha: float = 0.5,
                   proba=None, y: Any = None):
    """Grad-CAM of each label: where the network looks for that label, on images picked per label.

    Labels take turns, so ``n`` panels cover every label they can. With the
    true labels ``y``, each label is shown on images that carry it, ones the
    model missed beside ones it found; without, on the images it gives the
    label most confidently. ``maps`` given (one per image of ``X``) are shown
    on the first ``n`` images instead, titled with the predicted labels.
    """
    from ._core.examples import check_maps, take_rows
    from .explain import grad_cam

    maps = check_maps(maps, "plot_cam")
    y_pred, proba = predictions(estimator, X, proba)
    classes = list(estimator.classes_)
    if maps is not None:
        maps = np.asarray(maps)[:n]
        pairs = [(i, None) for i in range(len(maps))]
    else:
        pairs = _label_examples(None if y is None else label_indicator(estimator, y), y_pred, proba, n)
        rows = np.asarray([i for i, _ in pairs], dtype=np.int64)
        maps = grad_cam(estimator, take_rows(X, rows), target=[classes[j] for _, j in pairs])
    images = display_images(estimator, X, np.asarray([i for i, _ in pairs], dtype=np.int64))
    fig, axes = _panels(len(pairs), 5, 2.2, 2.5)
    for ax, image, cam, (i, j) in zip(axes, images, maps, pairs):
        _show(ax, image)
        ax.imshow(cam, cmap="jet", alpha=alpha, vmin=0, vmax=1)
        ax.axis("off")
        if j is None:
            title = f"pred {_joined(estimator, y_pred[i])}"
        else:
            state = "" if y is None else (" found" if y_pred[i, j] else " missed")
            title = f"{classes[j]}{state}, p={proba[i, j]:.2f}"
        ax.set_title(title, fontsize=8)
    fig.suptitle("Class activation maps per label (Grad-CAM)")
    fig.tight_layout()
    return fig
