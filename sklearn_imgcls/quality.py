"""Data quality: mislabelled images (confident learning via cleanlab) and outliers in embedding space.

:func:`find_label_issues` gets out-of-fold probabilities with scikit-learn's
:func:`~sklearn.model_selection.cross_val_predict` and hands them to
cleanlab (``pip install 'sklearn-imgcls[quality]'``). :func:`find_outliers`
scores images with scikit-learn's IsolationForest or LocalOutlierFactor on
embeddings: a fitted classifier's penultimate layer, any fitted transformer
(e.g. :class:`~sklearn_imgcls.BackboneFeatures`), or raw pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ._core.multilabel import refuse_multilabel
from ._core.network import module_device
from .validation_report import ValidationReport, validate

__all__ = ["ValidationReport", "embeddings", "find_label_issues", "find_outliers", "validate"]


def find_label_issues(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    cv: int = 5,
    ranked: bool = False,
    n_jobs: int | None = None,
    random_state: int | None = 0,
) -> np.ndarray:
    """Find images whose label is probably wrong (Northcutt et al., 2021, confident learning).

    Parameters
    ----------
    estimator : classifier
        Any classifier with ``predict_proba`` (cloned; fitted ``cv`` times).
    X, y : images and labels
    cv : int
        Stratified folds for the out-of-fold probabilities.
    ranked : bool
        False: a boolean mask over the images. True: the indices of the
        suspected images, most suspicious first (cleanlab's self-confidence).
    n_jobs : int or None
        Parallel folds, as in ``cross_val_predict``.
    random_state : int or None
        Seed of the fold shuffling.
    """
    try:
        from cleanlab.filter import find_label_issues as cleanlab_find
    except ImportError:
        raise ImportError("find_label_issues needs cleanlab: pip install 'sklearn-imgcls[quality]'.") from None
    refuse_multilabel(estimator, "find_label_issues", "It looks for images whose one class is wrong; for several "
                      "labels per image use cleanlab.multilabel_classification.find_label_issues on out-of-fold "
                      "probabilities (sklearn.model_selection.cross_val_predict(..., method='predict_proba')).", y)
    y = np.asarray(y)
    classes, encoded = np.unique(y, return_inverse=True)
    counts = np.bincount(encoded)
    if counts.min() < cv:
        raise ValueError(
            f"cv={cv} needs at least {cv} images of every class; class {classes[counts.argmin()].item()!r} has {counts.min()}."
        )
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    pred_probs = cross_val_predict(clone(estimator), X, y, cv=folds, method="predict_proba", n_jobs=n_jobs)
    return cleanlab_find(encoded, pred_probs, return_indices_ranked_by="self_confidence" if ranked else None)


def embeddings(source: Any, X: Any, image_shape: Any = None) -> np.ndarray:
    """Feature rows for ``X`` from ``source``.

    ``source`` is None (flattened pixels), a fitted transformer (its
    ``transform``), or a fitted classifier of this package (the input of its
    last linear layer, i.e. the penultimate embedding).
    """
    if source is None:
        from .select import FlattenPixels

        return FlattenPixels(image_shape).fit(X).transform(X)
    if hasattr(source, "net_"):
        return _penultimate(source, X)
    if hasattr(source, "transform"):
        return np.asarray(source.transform(X))
    raise TypeError(f"Cannot take embeddings from {type(source).__name__}: pass None, a fitted transformer or classifier.")


def _penultimate(estimator: Any, X: Any) -> np.ndarray:
    from ._core.data import as_image_data
    from ._core.inference import inference_batch_size, map_batches

    module = estimator.net_.module_
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError(f"{type(estimator).__name__}'s network has no linear layer to take embeddings before.")
    captured: list[torch.Tensor] = []
    hook = linears[-1].register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0].detach().flatten(1)))
    data = as_image_data(X, fitted_shape=estimator.image_shape_, estimator_name=type(estimator).__name__)
    batch_size = inference_batch_size(estimator.batch_size_, estimator.image_shape_, module_device(module))

    def step(batch: torch.Tensor) -> torch.Tensor:
        module(batch)
        return captured.pop()

    try:
        return map_batches(module, data, step, batch_size)
    finally:
        hook.remove()


def find_outliers(
    X: Any,
    *,
    source: Any = None,
    method: str = "isolation_forest",
    contamination: Any = "auto",
    image_shape: Any = None,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Flag unusual images: ``(mask, scores)``, higher scores more anomalous.

    Parameters
    ----------
    X : images
    source : None, fitted transformer or fitted classifier
        Where the embeddings come from; see :func:`embeddings`.
    method : {"isolation_forest", "lof"}
        scikit-learn's IsolationForest or LocalOutlierFactor.
    contamination : "auto" or float
        Expected share of outliers, as in scikit-learn.

    Notes
    -----
    A classifier's own penultimate layer is a poor place to look for images
    that belong to no class: measured on digits with 8 uniform-noise images
    added, pixels flagged them (IsolationForest and LOF, top of the ranking),
    while a trained simple_cnn's embeddings ranked them as ordinary (ReLU
    features of noise are small and generic). Prefer pixels for small
    aligned images, or a pretrained :class:`~sklearn_imgcls.BackboneFeatures`.
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    features = embeddings(source, X, image_shape)
    if method == "isolation_forest":
        model = IsolationForest(contamination=contamination, random_state=random_state).fit(features)
        labels, scores = model.predict(features), -model.score_samples(features)
    elif method == "lof":
        model = LocalOutlierFactor(contamination=contamination)
        labels = model.fit_predict(features)
        scores = -model.negative_outlier_factor_
    else:
        raise ValueError(f"method must be 'isolation_forest' or 'lof', got {method!r}.")
    return labels == -1, scores
