"""BackboneFeatures: images to embedding vectors with a frozen pretrained backbone."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._core import params as P
from ._core.data import as_image_data
from ._core.inference import map_batches
from ._core.pretrained import build_pretrained_network
from .plugin.registry import get_registry

__all__ = ["BackboneFeatures"]


class BackboneFeatures(TransformerMixin, BaseEstimator):
    """Transform images into the penultimate-layer features of a pretrained network.

    For linear probes (``make_pipeline(BackboneFeatures(...),
    LogisticRegression())``), clustering, outlier detection and label-issue
    finding. Nothing is trained: ``fit`` loads the network and learns the
    input shape; ``transform`` runs batched inference without gradients.

    Parameters
    ----------
    backbone : str, default="resnet18"
        Registry backbone name.
    weights : str or None, default="DEFAULT"
        As :class:`~sklearn_imgcls.TransferClassifier`: a weights name the
        backbone declares (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...; see
        :func:`sklearn_imgcls.plugin.catalog.describe_weights`), a checkpoint
        path, or None (random features, a baseline). The declared weights
        bring their input size, mean and std; the backbone's declared
        ``classifier`` is replaced by an identity.
    image_shape : tuple of int or None, default=None
        Layout of flat 2-D inputs, as for the classifiers.
    input_size : tuple of int or None, default=None
        ``(H, W)`` to resize to; None uses the weights' declared size.
    backbone_params : dict or None, default=None
        Extra builder arguments for registry backbones.
    batch_size : int, default=64
        Images per inference batch.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available.

    Attributes
    ----------
    network_ : torch.nn.Module
        The feature extractor (the head replaced by an identity).
    n_features_in_ : int
        Values per input image.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the images seen in ``fit``.
    n_features_out_ : int
        Length of each embedding.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        weights: str | None = "DEFAULT",
        *,
        image_shape: tuple[int, ...] | None = None,
        input_size: tuple[int, int] | None = None,
        backbone_params: dict | None = None,
        batch_size: int = 64,
        device: str = "auto",
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.image_shape = image_shape
        self.input_size = input_size
        self.backbone_params = backbone_params
        self.batch_size = batch_size
        self.device = device

    def fit(self, X: Any, y: Any = None) -> "BackboneFeatures":
        """Load the network and record the input shape of ``X``.

        Returns
        -------
        self
        """
        get_registry().get("backbone", self.backbone)
        P.check_int("batch_size", self.batch_size)
        device = P.check_device(self.device)
        data = as_image_data(X, self.image_shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # only matters for weights=None
            built = build_pretrained_network(
                self.backbone, self.weights, data, None, self.input_size, P.check_dict("backbone_params", self.backbone_params)
            )
        self.network_ = built.network.to(device).eval()
        self.image_shape_ = data.image_shape
        self.n_features_in_ = int(np.prod(data.image_shape))
        with torch.inference_mode():
            probe = next(data.batches(1)).to(device)
            self.n_features_out_ = int(self.network_(probe).reshape(1, -1).shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return one embedding row per image, ``(n_samples, n_features_out_)`` float32."""
        check_is_fitted(self)
        data = as_image_data(X, fitted_shape=self.image_shape_, estimator_name=type(self).__name__)
        return map_batches(self.network_, data, lambda batch: self.network_(batch).reshape(len(batch), -1), self.batch_size)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # embeddings are always float32
        return tags

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names ``<backbone>_0`` ... for the embedding columns."""
        check_is_fitted(self)
        return np.asarray([f"{self.backbone}_{i}" for i in range(self.n_features_out_)], dtype=object)
