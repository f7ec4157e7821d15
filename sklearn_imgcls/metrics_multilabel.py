"""Evaluation of a multi-label classifier (several labels per image) with scikit-learn's metrics.

A multi-label model of ours has ``multilabel_ = True``, ``classes_`` (its
``k`` labels), ``predict_proba`` returning ``(n, k)`` independent
probabilities and a ``threshold`` (a float, or one per label) above which a
label is predicted. :func:`label_indicator` turns the true labels, in any
form ``fit`` accepts, into the ``(n, k)`` 0/1 matrix in ``classes_`` order;
:func:`evaluate_multilabel` scores it. :func:`sklearn_imgcls.metrics.evaluate`
calls it for a multi-label model.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ._core.introspection import final_estimator
from ._core.multilabel import is_label_set, looks_multilabel

__all__ = ["evaluate_multilabel", "is_multilabel", "label_indicator", "label_names", "labels_to_indicator",
           "looks_multilabel", "multilabel_f1_scorer", "threshold_predictions"]


def is_multilabel(estimator: Any) -> bool:
    """Whether ``estimator`` (or a pipeline's last step) was fitted on multi-label targets (``multilabel_``)."""
    return bool(getattr(final_estimator(estimator), "multilabel_", False))


def label_indicator(estimator: Any, y: Any) -> np.ndarray:
    """The true labels ``y`` of a multi-label model as an ``(n, k)`` int 0/1 matrix in ``classes_`` order.

    Parameters
    ----------
    estimator : fitted multi-label classifier
    y : array-like of shape (n, k), DataFrame, sparse matrix or sequence of label lists
        The forms ``fit`` accepts: a 0/1 indicator matrix whose columns
        follow ``classes_`` (a DataFrame's columns are matched by name), or
        one list (tuple, set) of label names per image, binarised with
        :class:`sklearn.preprocessing.MultiLabelBinarizer`; an empty list
        means no label. Nested lists of numbers of one length are read as a
        matrix.

    Returns
    -------
    numpy.ndarray of shape (n_samples, n_labels)

    Raises
    ------
    ValueError
        Labels the model never saw, a matrix with the wrong number of
        columns, values other than 0 and 1, or one label per image.
    """
    return labels_to_indicator(y, final_estimator(estimator).classes_, owner="the model")


def labels_to_indicator(y: Any, classes: Any, owner: str = "the labels given") -> np.ndarray:
    """``y`` (a 0/1 matrix, DataFrame, sparse matrix or label lists) as an int 0/1 matrix over ``classes``.

    See :func:`label_indicator`; ``owner`` names where ``classes`` come from in messages.
    """
    classes = list(classes)
    shown = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if hasattr(y, "toarray"):  # scipy sparse
        y = y.toarray()
    if hasattr(y, "columns") and getattr(y, "ndim", 1) == 2:
        names = [c.item() if isinstance(c, np.generic) else c for c in y.columns]
        if set(names) != set(shown):
            missing, extra = [c for c in shown if c not in names], [c for c in names if c not in shown]
            raise ValueError(f"The columns of y must be {owner}'s labels {shown}; missing {missing}, unknown {extra}.")
        y = y[[y.columns[names.index(c)] for c in shown]].to_numpy()
    values = y.tolist() if hasattr(y, "tolist") else list(y)
    if not any(is_label_set(v) for v in values):
        raise ValueError(
            f"Multi-label y (labels {shown}) needs several labels per image, as an (n, {len(classes)}) 0/1 matrix "
            "or one list of labels per image (e.g. [['cat', 'dog'], [], ['dog']]), not one label per image.")
    matrix = _numeric_matrix(values)
    if matrix is not None:
        if matrix.shape[1] != len(classes):
            raise ValueError(f"y has {matrix.shape[1]} columns but {owner} has {len(classes)} labels {shown}; "
                             f"give one 0/1 column per label, in that order.")
        if not np.isin(matrix, (0, 1)).all():
            raise ValueError("A multi-label y as a matrix must hold only 0 and 1 (label absent / present).")
        return matrix.astype(int)
    sets = [list(v) if is_label_set(v) else [v] for v in values]
    unknown = sorted({repr(label.item() if isinstance(label, np.generic) else label)
                      for labels in sets for label in labels if label not in classes})
    if unknown:
        raise ValueError(f"y has labels {owner} never saw: {', '.join(unknown)}; its labels are {shown}.")
    from sklearn.preprocessing import MultiLabelBinarizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MultiLabelBinarizer(classes=classes).fit_transform(sets).astype(int)


def label_names(*ys: Any) -> list:
    """The labels of multi-label targets without a model: a DataFrame's columns, ``0..k-1`` for a matrix,
    else the sorted labels found in the label lists."""
    for y in ys:
        if y is not None and hasattr(y, "columns"):
            return list(y.columns)
    found: set = set()
    for y in ys:
        if y is None:
            continue
        values = y.toarray().tolist() if hasattr(y, "toarray") else (y.tolist() if hasattr(y, "tolist") else list(y))
        matrix = _numeric_matrix(values)
        if matrix is not None:
            return list(range(matrix.shape[1]))
        found |= {label for v in values for label in (v if is_label_set(v) else [v])}
    return sorted(found)


def _numeric_matrix(values: list) -> np.ndarray | None:
    """Rows of numbers of one length (an indicator matrix, maybe as nested lists) as an array, else None."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged: label lists of different lengths
        return None
    return array if array.ndim == 2 and array.shape[1] and array.dtype.kind in "biuf" else None


def threshold_predictions(estimator: Any, proba: np.ndarray) -> np.ndarray:
    """The ``(n, k)`` 0/1 predictions of a multi-label model: probability ``>=`` its ``threshold`` (per label)."""
    from ._core.multilabel import check_threshold  # imports torch: only when predictions are needed

    proba = np.asarray(proba)
    threshold = check_threshold(getattr(final_estimator(estimator), "threshold", 0.5), proba.shape[1])
    return (proba >= threshold).astype(np.int64)


def _per_label(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: Any) -> pd.DataFrame:
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    average_precision, roc_auc = [], []
    for j in range(y_true.shape[1]):
        both = 0 < y_true[:, j].sum() < len(y_true)
        average_precision.append(float(skm.average_precision_score(y_true[:, j], proba[:, j]))
                                 if y_true[:, j].any() else float("nan"))
        roc_auc.append(float(skm.roc_auc_score(y_true[:, j], proba[:, j])) if both else float("nan"))
    confusion = skm.multilabel_confusion_matrix(y_true, y_pred)  # (k, 2, 2): [[tn, fp], [fn, tp]]
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support,
         "average_precision": average_precision, "roc_auc": roc_auc,
         "tp": confusion[:, 1, 1], "fp": confusion[:, 0, 1], "fn": confusion[:, 1, 0], "tn": confusion[:, 0, 0]},
        index=pd.Index(classes, name="label"),
    )


def multilabel_f1_scorer() -> Any:
    """The scorer of ``f1_samples`` as :func:`evaluate_multilabel` computes it, for ``GridSearchCV(scoring=...)``.

    scikit-learn's ``"f1_samples"`` scores an image with no true and no
    predicted label 0 (an undefined F1); this scorer counts that exact match 1.
    """
    return skm.make_scorer(skm.f1_score, average="samples", zero_division=1.0)


def evaluate_multilabel(estimator: Any, y: Any, proba: np.ndarray) -> dict[str, Any]:
    """Score a multi-label model's probabilities ``proba`` against the true labels ``y``.

    Every number comes from :mod:`sklearn.metrics`; predictions are the
    probabilities at or above the model's ``threshold``.

    Parameters
    ----------
    estimator : fitted multi-label classifier
    y : true labels in any form :func:`label_indicator` reads
    proba : numpy.ndarray of shape (n, k)
        ``estimator.predict_proba(X)``.

    Returns
    -------
    dict
        ``subset_accuracy`` (exact match: every label right), ``hamming_loss``
        (share of wrong image-label pairs), ``f1_samples`` (the mean F1 of
        the images; one with no true and no predicted label counts 1, as
        :func:`multilabel_f1_scorer` scores it), ``f1_micro``,
        ``f1_macro``, ``f1_weighted``, ``precision_samples``,
        ``recall_samples`` (an image without predicted, resp. true, labels
        counts 0), ``precision_micro``, ``recall_micro``,
        ``precision_macro``, ``recall_macro``, ``average_precision_micro``,
        ``average_precision_macro`` and ``roc_auc_macro`` (over the labels
        that occur, resp. occur and are absent somewhere),
        ``label_ranking_average_precision``, ``label_ranking_loss``,
        ``coverage_error``, ``n_labels`` and ``per_label`` (a DataFrame of
        precision, recall, F1, support, average precision, ROC AUC (NaN
        where only one of present/absent occurs) and the tp/fp/fn/tn counts
        of :func:`sklearn.metrics.multilabel_confusion_matrix`).
    """
    proba = np.asarray(proba, dtype=float)
    y_true = label_indicator(estimator, y)
    classes = final_estimator(estimator).classes_
    if len(y_true) != len(proba):
        raise ValueError(f"X holds {len(proba)} images but y has {len(y_true)} rows of labels; they must match.")
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"proba must have shape (n, {len(classes)}), one column per label; got {proba.shape}.")
    y_pred = threshold_predictions(estimator, proba)
    per_label = _per_label(y_true, y_pred, proba, classes)
    scores = {
        "subset_accuracy": skm.accuracy_score(y_true, y_pred),
        "hamming_loss": skm.hamming_loss(y_true, y_pred),
    }
    for average in ("samples", "micro", "macro", "weighted"):
        # an image with no true and no predicted label is a perfect match (1), not an undefined score (0)
        scores[f"f1_{average}"] = skm.f1_score(y_true, y_pred, average=average,
                                               zero_division=1.0 if average == "samples" else 0.0)
        if average != "weighted":
            scores[f"precision_{average}"] = skm.precision_score(y_true, y_pred, average=average, zero_division=0)
            scores[f"recall_{average}"] = skm.recall_score(y_true, y_pred, average=average, zero_division=0)
    present = y_true.any(axis=0)
    scores["average_precision_micro"] = (skm.average_precision_score(y_true, proba, average="micro")
                                         if present.any() else float("nan"))
    scores["average_precision_macro"] = float(np.nanmean(per_label["average_precision"])) if present.any() else float("nan")
    scores["roc_auc_macro"] = float(np.nanmean(per_label["roc_auc"])) if per_label["roc_auc"].notna().any() else float("nan")
    scores["label_ranking_average_precision"] = skm.label_ranking_average_precision_score(y_true, proba)
    scores["label_ranking_loss"] = skm.label_ranking_loss(y_true, proba)
    scores["coverage_error"] = skm.coverage_error(y_true, proba)
    result: dict[str, Any] = {name: float(value) for name, value in scores.items()}
    result["n_labels"] = len(classes)
    result["per_label"] = per_label
    return result
