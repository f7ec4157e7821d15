"""The skorch net the estimators train: sample weights on top of ``NeuralNetClassifier``.

Following skorch's convention for extra per-sample data, a sample-weighted
fit passes inputs as dicts ``{"images": ..., "sample_weight": ...}``. The
module only sees the images; the criterion (switched to ``reduction="none"``)
returns one loss per image, and the batch loss is their weighted mean
``sum(w_i * l_i) / sum(w_i)``. Without weights nothing changes.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from skorch import NeuralNetClassifier
from skorch.utils import to_tensor

from .iterators import images_of

__all__ = ["ImageNeuralNet", "accelerated_net_class", "per_sample_criterion"]


def per_sample_criterion(criterion: torch.nn.Module, loss_name: str) -> torch.nn.Module:
    """Switch ``criterion`` to one loss per sample, or explain why it cannot weight samples."""
    if not hasattr(criterion, "reduction"):
        raise ValueError(
            f"The loss {loss_name!r} cannot weight samples: its module has no 'reduction' attribute to "
            "set to 'none'. Fit without sample_weight, or use a loss that supports it (all built-in losses do)."
        )
    criterion.reduction = "none"
    return criterion


class ImageNeuralNet(NeuralNetClassifier):
    """:class:`skorch.NeuralNetClassifier` that accepts per-sample weights in dict inputs."""

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:  # noqa: D102
        return super().infer(images_of(x), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training: bool = False):  # noqa: D102
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if isinstance(X, Mapping) and "sample_weight" in X:
            weight = to_tensor(X["sample_weight"], self.device).to(loss.dtype)
            return (loss * weight).sum() / weight.sum().clamp_min(torch.finfo(loss.dtype).tiny)
        return loss


def accelerated_net_class() -> type:
    """:class:`ImageNeuralNet` with skorch's :class:`~skorch.hf.AccelerateMixin` (needs ``accelerate``)."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise ImportError("accelerator= needs Hugging Face Accelerate: pip install 'sklearn-imgcls[accelerate]'.") from None
    from .accelerated import AcceleratedImageNeuralNet

    return AcceleratedImageNeuralNet
