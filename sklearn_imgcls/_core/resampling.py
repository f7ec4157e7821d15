"""Resample the training split with an imbalanced-learn style ``fit_resample``.

Samplers such as SMOTE synthesise images once, before training. They must see
only the training part of the data: resampling before the validation split
would leak synthetic copies of validation images into training and report
optimistic validation scores. :class:`ResampledSplit` therefore wraps skorch's
``train_split`` and resamples what it hands back for training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skorch.dataset import Dataset

from .iterators import in_memory_tensors

__all__ = ["ResampledSplit"]


class ResampledSplit:
    """A skorch ``train_split`` that resamples the training part.

    Parameters
    ----------
    resampler : object
        Anything with ``fit_resample(X, y)`` on flat 2-D arrays (e.g.
        :class:`imblearn.over_sampling.SMOTE`).
    split : callable or None
        The validation split to apply first (``None``: train on everything).
    seed : int
        Seed given to the resampler's ``random_state`` when it has one.
    classes : array-like or None
        Original class labels, by encoded index, for error messages.
    """

    def __init__(self, resampler: Any, split: Any, seed: int, classes: Any = None) -> None:
        self.resampler = resampler
        self.split = split
        self.seed = seed
        self.classes = classes

    def __call__(self, dataset, y=None, **fit_params) -> tuple[Dataset, Any]:
        if self.split is None:
            train, valid = dataset, None
        else:
            train, valid = self.split(dataset, y, **fit_params)
        tensors = in_memory_tensors(train)
        if tensors is None or tensors[1] is None:
            raise ValueError(
                f"The sampler {type(self.resampler).__name__} resamples labelled images held in memory; "
                "load the files into an array first, or use sampler='oversample'."
            )
        X, labels, indices = tensors
        if indices is not None:
            X, labels = X[indices], labels[indices]
        images, y_new = self._resample(X.numpy(), labels.numpy())
        return Dataset(torch.from_numpy(images), torch.from_numpy(y_new)), valid

    def _resample(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if labels.ndim != 1:
            raise ValueError(
                f"{type(self.resampler).__name__} resamples the classes of a 1-D y, but the labels have shape "
                f"{labels.shape} (multi-label); use class_weight='balanced' instead of a sampler."
            )
        params = self.resampler.get_params()
        if "random_state" in params:
            self.resampler.set_params(random_state=self.seed)
        k = params.get("k_neighbors")
        if isinstance(k, int):
            counts = np.bincount(labels)
            present = np.flatnonzero(counts)
            smallest = present[np.argmin(counts[present])]
            if counts[smallest] <= k:
                label = smallest if self.classes is None else self.classes[smallest]
                label = label.item() if isinstance(label, np.generic) else label
                raise ValueError(
                    f"{type(self.resampler).__name__} interpolates between {k} neighbours of the same class, but "
                    f"the training split holds only {counts[smallest]} image(s) of class {label!r}. "
                    f"Give every class more than {k} training images (or a smaller validation_fraction), "
                    "or use sampler='oversample'."
                )
        flat, y_new = self.resampler.fit_resample(images.reshape(len(images), -1), labels)
        if images.dtype == np.uint8:
            flat = np.clip(np.rint(flat), 0, 255).astype(np.uint8)
        else:
            flat = np.asarray(flat, dtype=np.float32)
        return np.ascontiguousarray(flat.reshape(-1, *images.shape[1:])), np.asarray(y_new, dtype=np.int64)
