"""What a multi-label fit refuses before training: samplers, adversarial training, scorers that do not apply.

- Samplers (per-epoch class balancing, imbalanced-learn's SMOTE and other
  resamplers) balance *classes* of a 1-D ``y``; an image with several labels
  belongs to no single class, so there is nothing they could balance. The
  alternative is ``class_weight="balanced"``, which weights each label's
  positive images by ``negatives / positives`` (``pos_weight``).
- Adversarial training attacks the softmax of one class per image.
- ``scoring`` names are tried once on a small multi-label example (as skorch
  will score the validation split after every epoch): a scorer that cannot
  score indicator targets (``"f1"`` with its binary average,
  ``"balanced_accuracy"``, ...) is refused by name before training, not
  after the first epoch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import get_scorer

__all__ = ["MULTILABEL_SCORING_EXAMPLES", "check_multilabel_settings"]

#: scoring names that suit multi-label targets, shown when one does not
MULTILABEL_SCORING_EXAMPLES = ("accuracy", "f1_samples", "f1_macro", "f1_micro", "jaccard_samples", "roc_auc",
                               "average_precision")


class _FixedMultiLabelPredictions(ClassifierMixin, BaseEstimator):
    """A stand-in for the skorch net: fixed multi-label predictions, to try a scorer on."""

    def __init__(self, n_labels: int = 2) -> None:
        self.n_labels = n_labels

    def _indicator(self, n: int) -> np.ndarray:
        rows = np.arange(n)[:, None] + np.arange(self.n_labels)[None, :]
        return (rows % 2).astype(np.int64)

    def fit(self, X: Any, y: Any) -> "_FixedMultiLabelPredictions":  # noqa: D102
        self.classes_ = np.arange(self.n_labels)
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: D102
        return self._indicator(len(X))

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: D102
        return 0.2 + 0.6 * self._indicator(len(X))


def _scorer_error(name: str, n_labels: int) -> str | None:
    X = np.zeros((6, 1))
    truth = _FixedMultiLabelPredictions(n_labels).fit(X, None).predict(X)
    truth[0] = 1 - truth[0]  # not a perfect score, every label both set and unset
    truth[1] = 1
    estimator = _FixedMultiLabelPredictions(n_labels).fit(X, truth)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ill-defined scores on this tiny example are not the user's concern
            value = get_scorer(name)(estimator, X, truth)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        return str(exc).split("\n")[0]
    if not np.isfinite(value):
        return f"it gives {value}"
    return None


def check_multilabel_settings(settings: dict, sampler: Any, scoring: Any, n_labels: int) -> None:
    """Refuse what a multi-label fit cannot do, naming why and the alternative.

    Parameters
    ----------
    settings : dict
        The validated settings (``sampler``/``resampler`` resolved,
        ``adversarial``, ``scoring`` as a list of names).
    sampler, scoring : object
        The estimator's parameters as given (for the messages).
    n_labels : int
        Number of labels.

    Raises
    ------
    ValueError
    """
    if settings["sampler"] is not None or settings["resampler"] is not None:
        raise ValueError(
            f"sampler={sampler!r} balances the classes of a 1-D y, but y is multi-label: an image with several "
            "labels belongs to no single class, so there is nothing to resample. Use class_weight='balanced' (each "
            "label's positive images weighted by negatives / positives) and set sampler=None."
        )
    if settings["adversarial"]:
        raise ValueError(
            "adversarial training attacks the softmax of one class per image and is not supported for multi-label y; "
            "set adversarial=None."
        )
    for name in settings["scoring"]:
        problem = _scorer_error(name, n_labels)
        if problem is not None:
            raise ValueError(
                f"scoring={scoring!r}: {name!r} cannot score multi-label targets ({problem}). Use one that can, e.g. "
                f"{', '.join(map(repr, MULTILABEL_SCORING_EXAMPLES))} ('accuracy' is subset accuracy: every label "
                "of an image right)."
            )
