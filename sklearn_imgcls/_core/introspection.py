"""Questions asked of an estimator from outside it: its final step, the backbone it trained.

Model selection, robustness, reports and explanations accept a classifier of
ours or a :class:`sklearn.pipeline.Pipeline` ending in one; these functions
answer for both, so that each caller does not re-derive it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["final_estimator", "trained_backbone"]


def final_estimator(estimator: Any) -> Any:
    """The last step of a pipeline (anything with ``steps``), else ``estimator`` itself.

    Parameters
    ----------
    estimator : estimator or Pipeline

    Returns
    -------
    estimator
        ``estimator.steps[-1][1]`` for a pipeline (scikit-learn's
        ``Pipeline._final_estimator`` is private), else ``estimator``.
    """
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def trained_backbone(estimator: Any) -> Any:
    """The backbone name a classifier trained: its fitted ``backbone_``, else its ``backbone`` parameter.

    ``fit`` records ``backbone_`` with the preset resolved (``CNNClassifier()``
    trains ``bn_cnn`` while its ``backbone`` parameter is None); models saved
    by older versions lack it, and an unfitted estimator has only the
    parameter. None when the estimator has neither.
    """
    fitted = getattr(estimator, "backbone_", None)
    return fitted if fitted is not None else getattr(estimator, "backbone", None)
