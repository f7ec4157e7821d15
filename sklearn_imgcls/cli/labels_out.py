"""What the commands print and search for, for a single-label or a multi-label model.

``predict`` writes one ``prediction`` column: the class, or (multi-label)
the predicted labels joined by ``;`` (empty when none), as the "a;b" label
cells of a table that ``train`` reads; ``--proba`` adds one probability
column per class or label. ``evaluate`` prints the metrics that fit the model.
``tune`` splits and scores a multi-label ``y`` with :func:`search_settings`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics_multilabel import is_multilabel, looks_multilabel, multilabel_f1_scorer, threshold_predictions

__all__ = ["SEPARATOR", "add_predictions", "print_metrics", "search_settings"]

#: what joins the labels of one image, in tables read and written
SEPARATOR = ";"

_MULTICLASS = ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr")
_MULTILABEL = ("subset_accuracy", "hamming_loss", "f1_samples", "f1_micro", "f1_macro", "average_precision_macro",
               "roc_auc_macro", "label_ranking_average_precision")


def add_predictions(table: Any, estimator: Any, probabilities: np.ndarray, proba: bool = False) -> Any:
    """Add the ``prediction`` column (and with ``proba`` one ``proba_<label>`` column per class) to ``table``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per image, in the order of ``probabilities``.
    estimator : fitted classifier
    probabilities : numpy.ndarray of shape (n, k)
        ``estimator.predict_proba`` of the images.
    proba : bool
        Add the probability columns.

    Returns
    -------
    pandas.DataFrame
        ``table``, changed in place.
    """
    classes = estimator.classes_
    if is_multilabel(estimator):
        chosen = threshold_predictions(estimator, probabilities).astype(bool)
        table["prediction"] = [SEPARATOR.join(str(label) for label in classes[row]) for row in chosen]
    else:
        table["prediction"] = classes[probabilities.argmax(axis=1)]
    if proba:
        for i, label in enumerate(classes):
            table[f"proba_{label}"] = np.round(probabilities[:, i], 6)
    return table


def print_metrics(estimator: Any, metrics: dict) -> None:
    """Print the summary numbers of :func:`~sklearn_imgcls.metrics.evaluate` and its per-class (per-label) table."""
    multilabel = is_multilabel(estimator)
    width = 31 if multilabel else 18
    for name in _MULTILABEL if multilabel else _MULTICLASS:
        print(f"{name:>{width}}: {metrics[name]:.4f}")
    print(metrics["per_label" if multilabel else "per_class"].round(3).to_string())


def search_settings(y: Any, cv: int, seed: int) -> tuple[Any, Any, Any]:
    """``(folds, scoring, y)`` of a cross-validated search on ``y``.

    One label per image: stratified folds and the estimator's own score
    (accuracy). Several (a 0/1 matrix or label lists): shuffled
    :class:`~sklearn.model_selection.KFold` (scikit-learn cannot stratify
    them) and ``f1_samples`` (:func:`~sklearn_imgcls.metrics_multilabel.multilabel_f1_scorer`),
    since the default subset accuracy counts an image right only when every
    one of its labels is. Label lists come back as a 0/1 DataFrame with one
    column per label (scikit-learn's searches refuse lists of labels as a
    "legacy multi-label representation"; the columns keep the label names).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if looks_multilabel(y):
        if not hasattr(y, "shape") or np.ndim(y) == 1:  # one list of labels per image: binarised as fit does
            import pandas as pd

            from .._core.multilabel import multilabel_targets

            classes, indicator = multilabel_targets(list(y), len(y))
            y = pd.DataFrame(indicator.astype(int), columns=classes)
        return KFold(cv, shuffle=True, random_state=seed), multilabel_f1_scorer(), y
    return StratifiedKFold(cv, shuffle=True, random_state=seed), None, y
