"""FlattenPixels: images in any accepted layout as flat float rows, so classic scikit-learn models can use them."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["FlattenPixels"]


class FlattenPixels(TransformerMixin, BaseEstimator):
    """Turn images in any accepted layout into flat float rows in ``[0, 1]`` units, for classic models.

    Parameters
    ----------
    image_shape : tuple of int or None
        ``(C, H, W)`` of flat input rows, as the estimators' ``image_shape``.
    """

    def __init__(self, image_shape: Any = None) -> None:
        self.image_shape = image_shape

    def fit(self, X: Any, y: Any = None) -> "FlattenPixels":  # noqa: D102
        from ._core.data import as_image_data

        data = as_image_data(X, self.image_shape)
        self.image_shape_ = data.image_shape
        self.n_features_in_ = int(np.prod(data.image_shape))
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: D102
        import torch

        from ._core.data import as_image_data
        from ._core.network import to_float_images

        data = as_image_data(X, fitted_shape=self.image_shape_, estimator_name="FlattenPixels")
        return torch.cat([to_float_images(b) for b in data.batches(4096)]).flatten(1).numpy()
