"""Evaluation of a fitted classifier with scikit-learn's metrics, in one call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.utils.validation import check_is_fitted

from .metrics_multilabel import evaluate_multilabel, is_multilabel, looks_multilabel, threshold_predictions

__all__ = ["evaluate", "predictions"]


def predictions(estimator: Any, X: Any, proba: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_pred, proba)`` with one inference pass (or reuse ``proba``).

    ``y_pred`` holds one class per image; for a multi-label model
    (``multilabel_``) it is the ``(n, k)`` 0/1 matrix of the labels whose
    probability reaches the model's ``threshold``, as ``predict`` returns.
    """
    check_is_fitted(estimator)
    if proba is None:
        proba = estimator.predict_proba(X)
    proba = np.asarray(proba)
    if is_multilabel(estimator):
        return threshold_predictions(estimator, proba), proba
    return estimator.classes_[proba.argmax(axis=1)], proba


def evaluate(estimator: Any, X: Any, y: Any, *, k: int = 3, proba: np.ndarray | None = None) -> dict[str, Any]:
    """Score a fitted classifier on ``(X, y)`` with the usual classification metrics.

    Every number comes from :mod:`sklearn.metrics`. A multi-label model
    (``multilabel_``) is scored per label and over labels instead, by
    :func:`~sklearn_imgcls.metrics_multilabel.evaluate_multilabel` (see
    there for its keys: ``subset_accuracy``, ``hamming_loss``,
    ``f1_samples``, ``f1_micro``, ``f1_macro``, ``per_label``, ...).

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba`` and ``classes_``
    X : images in any accepted input format
    y : array-like of true labels
        One label per image; for a multi-label model an (n, k) 0/1 matrix
        (columns in ``classes_`` order, or a DataFrame with the labels as
        columns) or one list of labels per image.
    k : int, default=3
        ``k`` of the top-k accuracy, capped at the number of classes minus one
        (a top-k over every class is always 1; scikit-learn warns it is meaningless).
    proba : numpy.ndarray, optional
        Precomputed ``estimator.predict_proba(X)``, to skip inference.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``precision_macro``,
        ``recall_macro``, ``f1_macro``, ``f1_weighted``, ``roc_auc_ovr``,
        ``log_loss``, ``top_k_accuracy`` (floats; ROC-AUC is NaN when ``y``
        lacks a class), ``k``, ``confusion_matrix`` (a DataFrame, true labels
        as rows) and ``per_class`` (a DataFrame of precision, recall, F1 and
        support per class).
    """
    if is_multilabel(estimator):
        return evaluate_multilabel(estimator, y, predictions(estimator, X, proba)[1])
    if looks_multilabel(y):
        raise ValueError("y holds several labels per image, but this model was trained for single-label "
                         "(multiclass) classification; give one label per image, or train a multi-label model "
                         "on these labels (fit(X, Y) with Y a 0/1 matrix or lists of labels).")
    y_true = np.asarray(y)
    y_pred, proba = predictions(estimator, X, proba)
    if len(y_true) != len(y_pred):
        raise ValueError(f"X holds {len(y_pred)} images but y has {len(y_true)} labels; they must match.")
    classes = estimator.classes_
    unknown = set(np.unique(y_true).tolist()) - set(classes.tolist())
    if unknown:
        raise ValueError(f"y has labels the estimator never saw in fit: {sorted(map(repr, unknown))}.")
    binary = len(classes) == 2
    scores = proba[:, 1] if binary else proba
    try:
        roc_auc = float(skm.roc_auc_score(y_true, scores, multi_class="ovr", labels=None if binary else classes))
    except ValueError:  # a class missing from y_true
        roc_auc = float("nan")
    k = int(max(1, min(k, len(classes) - 1)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "precision_macro": float(skm.precision_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)),
        "recall_macro": float(skm.recall_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)),
        "f1_weighted": float(skm.f1_score(y_true, y_pred, average="weighted", labels=classes, zero_division=0)),
        "roc_auc_ovr": roc_auc,
        "log_loss": float(skm.log_loss(y_true, proba, labels=classes)),
        "top_k_accuracy": float(skm.top_k_accuracy_score(y_true, scores, k=k, labels=classes)),
        "k": k,
        "confusion_matrix": pd.DataFrame(
            skm.confusion_matrix(y_true, y_pred, labels=classes),
            index=pd.Index(classes, name="true"),
            columns=pd.Index(classes, name="predicted"),
        ),
        "per_class": pd.DataFrame(
            {"precision": precision, "recall": recall, "f1": f1, "support": support},
            index=pd.Index(classes, name="class"),
        ),
    }
