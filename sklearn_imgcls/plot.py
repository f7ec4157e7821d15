"""Figures for understanding a model: errors, curves, training, data, search, explanations.

Every function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``. scikit-learn's displays draw where they fit
(``ConfusionMatrixDisplay``, ``RocCurveDisplay``, ``PrecisionRecallDisplay``).
Functions that need predictions take an optional ``proba`` (the output of
``estimator.predict_proba(X)``) so several figures share one inference pass.
A multi-label model is drawn per label by :mod:`sklearn_imgcls.plot_multilabel`.
matplotlib is an optional dependency: ``pip install 'sklearn-imgcls[plot]'``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import plot_multilabel as ML
from ._core.examples import display_images
from .metrics import predictions

__all__ = ["plot_augmentations", "plot_cam", "plot_class_distribution", "plot_confusion_matrix", "plot_history",
           "plot_leaderboard", "plot_precision_recall", "plot_robustness", "plot_roc", "plot_search", "plot_top_losses"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plotting needs matplotlib: pip install 'sklearn-imgcls[plot]'.") from None
    return plt


@ML.multilabel_alternative(ML.plot_label_confusion)
def plot_confusion_matrix(estimator: Any, X: Any, y: Any, *, normalize: str | None = None, proba=None):
    """Confusion matrix, counts (``normalize=None``) or rates (``"true"``, ``"pred"``, ``"all"``)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    y_pred, _ = predictions(estimator, X, proba)
    size = max(4.0, 0.5 * len(estimator.classes_) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y), y_pred, labels=estimator.classes_, normalize=normalize, ax=ax, colorbar=False,
        values_format=".2f" if normalize else "d", xticks_rotation=45,
    )
    ax.set_title("Confusion matrix" + (f" (normalised over {normalize})" if normalize else " (counts)"))
    fig.tight_layout()
    return fig


def _one_vs_rest(estimator, y, proba):
    from sklearn.preprocessing import label_binarize

    classes = estimator.classes_
    y_bin = label_binarize(np.asarray(y), classes=classes)
    if len(classes) == 2:
        y_bin = np.hstack([1 - y_bin, y_bin])
    return classes, y_bin


@ML.multilabel_alternative(ML.plot_label_roc)
def plot_roc(estimator: Any, X: Any, y: Any, *, proba=None):
    """One-vs-rest ROC curve per class, plus the micro and macro averages."""
    from sklearn.metrics import RocCurveDisplay, auc, roc_curve

    plt = _pyplot()
    _, proba = predictions(estimator, X, proba)
    classes, y_bin = _one_vs_rest(estimator, y, proba)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    grid = np.linspace(0, 1, 201)
    tprs = []
    for i, label in enumerate(classes):
        if y_bin[:, i].min() == y_bin[:, i].max():
            continue  # class absent from y: no curve
        RocCurveDisplay.from_predictions(y_bin[:, i], proba[:, i], name=f"class {label}", ax=ax)
        fpr, tpr, _ = roc_curve(y_bin[:, i], proba[:, i])
        tprs.append(np.interp(grid, fpr, tpr))
    fpr, tpr, _ = roc_curve(y_bin.ravel(), proba.ravel())
    ax.plot(fpr, tpr, "k--", lw=2, label=f"micro-average (AUC = {auc(fpr, tpr):.3f})")
    macro = np.mean(tprs, axis=0)
    ax.plot(grid, macro, "k:", lw=2, label=f"macro-average (AUC = {auc(grid, macro):.3f})")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title("ROC curves (one-vs-rest)")
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


@ML.multilabel_alternative(ML.plot_label_precision_recall)
def plot_precision_recall(estimator: Any, X: Any, y: Any, *, proba=None):
    """One-vs-rest precision-recall curve per class."""
    from sklearn.metrics import PrecisionRecallDisplay

    plt = _pyplot()
    _, proba = predictions(estimator, X, proba)
    classes, y_bin = _one_vs_rest(estimator, y, proba)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for i, label in enumerate(classes):
        if y_bin[:, i].max() == 0:
            continue
        PrecisionRecallDisplay.from_predictions(y_bin[:, i], proba[:, i], name=f"class {label}", ax=ax)
    ax.set_xlabel("recall")  # not sklearn's "(Positive label: 1)": every curve is one class against the rest
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curves (one-vs-rest)")
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    return fig


def plot_history(estimator: Any):
    """Training curves from the skorch history: losses, and tracked validation scores."""
    plt = _pyplot()
    history = estimator.history_
    epochs = history[:, "epoch"]
    scores = sorted({k for row in history for k in row if k.startswith("valid_") and k != "valid_loss" and not k.endswith(("_best", "_batch_count"))})
    fig, axes = plt.subplots(1, 2 if scores else 1, figsize=(11 if scores else 6, 4), squeeze=False)
    for key in ("train_loss", "valid_loss"):
        values = [row.get(key) for row in history]
        if all(v is not None for v in values):
            axes[0, 0].plot(epochs, values, marker="o", label=key.replace("_", " "))
    axes[0, 0].set_xlabel("epoch")
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].set_title("Loss per epoch")
    axes[0, 0].legend()
    if scores:
        for key in scores:
            axes[0, 1].plot(epochs, [row.get(key) for row in history], marker="o", label=key.replace("_", " "))
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_ylabel("score")
        axes[0, 1].set_title("Validation scores per epoch")
        axes[0, 1].legend()
    for ax in axes.flat:  # epochs are whole numbers
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


@ML.multilabel_alternative(ML.plot_label_distribution)
def plot_class_distribution(y: Any, y_test: Any = None):
    """Images per class (training, and test when given), with the imbalance ratio."""
    plt = _pyplot()
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(labels) + 2), 4))
    width = 0.4 if y_test is not None else 0.8
    positions = np.arange(len(labels))
    ax.bar(positions - (width / 2 if y_test is not None else 0), counts, width, label="train")
    if y_test is not None:
        test = dict(zip(*np.unique(np.asarray(y_test), return_counts=True)))
        ax.bar(positions + width / 2, [test.get(label, 0) for label in labels], width, label="test")
        ax.legend()
    ax.set_xticks(positions, [str(label) for label in labels], rotation=45)
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_title(f"Class distribution (imbalance ratio {counts.max() / counts.min():.1f})")
    fig.tight_layout()
    return fig





def _grid(n: int):
    cols = min(n, 5)
    return math.ceil(n / cols), cols


@ML.multilabel_alternative(ML.plot_label_top_losses)
def plot_top_losses(estimator: Any, X: Any, y: Any, *, n: int = 9, proba=None):
    """The ``n`` most confidently wrong images: true and predicted label, loss and probability."""
    plt = _pyplot()
    y_pred, proba = predictions(estimator, X, proba)
    classes = list(estimator.classes_)
    true_index = np.asarray([classes.index(label) for label in np.asarray(y)])
    p_true = proba[np.arange(len(proba)), true_index]
    losses = -np.log(np.clip(p_true, 1e-12, 1.0))
    order = np.argsort(-losses)[: max(1, min(n, len(losses)))]
    images = display_images(estimator, X, order)
    rows, cols = _grid(len(order))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, i in zip(axes.ravel(), images, order):
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image[..., :3], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"true {np.asarray(y)[i]} / pred {y_pred[i]}\nloss {losses[i]:.2f}, p={p_true[i]:.2f}", fontsize=8)
    fig.suptitle("Top losses: the most confidently wrong images")
    fig.tight_layout()
    return fig


def plot_search(search: Any):
    """Mean cross-validated score (± std) against each searched parameter of a fitted search."""
    plt = _pyplot()
    if not hasattr(search, "cv_results_"):
        raise ValueError("plot_search needs a fitted GridSearchCV/RandomizedSearchCV (it has no cv_results_).")
    results = search.cv_results_
    params = [key[len("param_") :] for key in results if key.startswith("param_")]
    fig, axes = plt.subplots(1, len(params), figsize=(4.5 * len(params), 4), squeeze=False)
    for ax, param in zip(axes.ravel(), params):
        values = [str(v) for v in results[f"param_{param}"]]
        ax.errorbar(values, results["mean_test_score"], yerr=results["std_test_score"], fmt="o", capsize=4)
        ax.set_xlabel(param)
        ax.set_ylabel("mean test score")
        ax.set_title(param)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"Search results (best: {search.best_score_:.3f})")
    fig.tight_layout()
    return fig


@ML.multilabel_alternative(ML.plot_label_cam)
def plot_cam(estimator: Any, X: Any, maps: np.ndarray | None = None, *, n: int = 8, alpha: float = 0.5, proba=None,
             y: Any = None):
    """Overlay explanation maps on ``n`` images, titled with their predicted class.

    ``maps`` are those of :func:`~sklearn_imgcls.explain.grad_cam` or
    :func:`~sklearn_imgcls.explain.occlusion_sensitivity` for ``X``; Grad-CAM
    is computed when omitted. ``proba`` (of all of ``X``) spares predicting.
    With the true labels ``y`` the images are picked across classes, mistakes
    beside successes (titles "true / pred"); without, the first ``n``.
    """
    plt = _pyplot()
    from ._core.examples import check_maps, diverse_examples, take_rows
    from ._core.labels import plain
    from .explain import grad_cam

    maps = check_maps(maps, "plot_cam")
    if y is not None:
        predicted_all, _ = predictions(estimator, X, proba)
        pick = diverse_examples(np.asarray(y), predicted_all, n)
        X, y, proba = take_rows(X, pick), np.asarray(y)[pick], None if proba is None else np.asarray(proba)[pick]
        maps = None if maps is None else np.asarray(maps)[pick]
    first = X[:n]  # arrays, lists and pandas Series all slice
    maps = grad_cam(estimator, first) if maps is None else np.asarray(maps)[:n]
    count = len(maps)
    images = display_images(estimator, first, np.arange(count))
    predicted, _ = predictions(estimator, first, None if proba is None else np.asarray(proba)[: len(first)])
    if y is not None:
        predicted = [f"{plain(t)} / {plain(p)}" for t, p in zip(y, predicted)]
    rows, cols = _grid(count)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, cam, label in zip(axes.ravel(), images, maps, predicted):
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image[..., :3], cmap="gray", vmin=0, vmax=1)
        ax.imshow(cam, cmap="jet", alpha=alpha, vmin=0, vmax=1)
        ax.set_title(f"pred {label}" if y is None else f"true / pred: {label}", fontsize=8)
    fig.suptitle("Class activation maps")
    fig.tight_layout()
    return fig


def plot_augmentations(
    X: Any,
    augment: Any = "standard",
    *,
    image_shape: Any = None,
    n_images: int = 6,
    n_views: int = 5,
    random_state: int = 0,
):
    """Preview augmentation: each row shows an image and ``n_views`` augmented versions of it.

    Parameters
    ----------
    X : array-like, sequence of file paths or of PIL images
        Images in any layout the estimators accept; the first ``n_images``
        are shown.
    augment : str or list
        What the estimators' ``augment`` parameter accepts: a preset or a
        list of names / ``(name, params)`` pairs.
    image_shape : tuple of int or None
        ``(C, H, W)`` for flat rows, as the estimators' ``image_shape``.
    n_images, n_views : int
        Rows and augmented columns.
    random_state : int
        Seed of the augmentation draws.
    """
    import torch

    from ._core.data import as_image_data
    from ._core.network import to_float_images
    from ._core.iterators import augment_batch
    from ._core.components import augmentation_chain
    from ._core.params import check_int

    plt = _pyplot()
    n_images, n_views = check_int("n_images", n_images), check_int("n_views", n_views)
    chain = augmentation_chain(augment)
    data = as_image_data(X, image_shape)
    n_images = min(n_images, len(data))
    images = next(data.batches(n_images))
    images = to_float_images(images)
    generator = torch.Generator().manual_seed(random_state)
    labels = torch.arange(n_images)
    views = [images] + [augment_batch(chain, images, labels, generator, n_images)[0] for _ in range(n_views)]
    low, high = float(images.min()), float(images.max())
    fig, axes = plt.subplots(n_images, n_views + 1, figsize=(1.6 * (n_views + 1), 1.6 * n_images + 0.5), squeeze=False)
    for column, view in enumerate(views):
        shown = ((view - low) / max(high - low, 1e-12)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        for row in range(n_images):
            ax = axes[row, column]
            image = shown[row]
            ax.imshow(image[..., 0] if image.shape[-1] != 3 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, column].set_title("original" if column == 0 else f"view {column}", fontsize=8)
    name = augment if isinstance(augment, str) else ", ".join(item if isinstance(item, str) else item[0] for item in augment)
    fig.suptitle(f"augment={name}", fontsize=10)
    fig.tight_layout()
    return fig


def _pareto_front(cost: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask of points no other point beats on both lower cost and higher score."""
    front = np.ones(len(cost), dtype=bool)
    for i in range(len(cost)):
        better = (cost <= cost[i]) & (score >= score[i]) & ((cost < cost[i]) | (score > score[i]))
        front[i] = not better.any()
    return front


def plot_leaderboard(board: Any, score: str | None = None):
    """Score (± std over folds) against fit time per fold, log scale; the Pareto front is highlighted.

    Parameters
    ----------
    board : DataFrame
        The output of :func:`sklearn_imgcls.select.leaderboard`.
    score : str or None
        Score column without the ``mean_`` prefix; default: the primary one.
    """
    plt = _pyplot()
    if score is None:
        score = next(c for c in board.columns if c.startswith("mean_"))[len("mean_"):]
    ok = board[board["status"] == "ok"]
    if ok.empty:
        raise ValueError("The leaderboard has no successful candidate to plot.")
    cost = ok["fit_time"].to_numpy(float)
    mean, std = ok[f"mean_{score}"].to_numpy(float), ok[f"std_{score}"].to_numpy(float)
    front = _pareto_front(cost, mean)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(cost[~front], mean[~front], yerr=std[~front], fmt="o", color="tab:gray", capsize=3, label="dominated")
    ax.errorbar(cost[front], mean[front], yerr=std[front], fmt="o", color="tab:red", capsize=3, label="Pareto front")
    order = np.argsort(cost[front])
    ax.plot(cost[front][order], mean[front][order], "-", color="tab:red", alpha=0.5)
    for x, y_, name in zip(cost, mean, ok["name"]):
        ax.annotate(str(name), (x, y_), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fit time per fold (s, log scale)")
    ax.set_ylabel(f"{score} (mean ± std over folds)")
    skipped = int((board["status"] != "ok").sum())
    ax.set_title("Leaderboard" + (f" ({skipped} candidate(s) failed or skipped)" if skipped else ""))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_robustness(curves: Any):
    """Accuracy against attack strength ``eps``, one line per model.

    Parameters
    ----------
    curves : DataFrame or dict of str to DataFrame
        Output(s) of :func:`sklearn_imgcls.robustness.robustness_curve`.
    """
    plt = _pyplot()
    if hasattr(curves, "columns"):
        curves = {"model": curves}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(curve["eps"], curve["accuracy"], "o-", label=str(name))
    ax.set_xlabel("attack strength eps")
    ax.set_ylabel("accuracy under attack")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Robustness curve")
    fig.tight_layout()
    return fig
