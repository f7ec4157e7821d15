"""Built-in losses (plugin): cross-entropy and label-smoothed cross-entropy."""

from __future__ import annotations

import torch
from torch import nn

from ..hookspecs import hookimpl
from ..specs import LossSpec


def cross_entropy(class_weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> nn.Module:
    """Cross-entropy on logits, with optional per-class weights.

    Parameters
    ----------
    class_weight : torch.Tensor or None
        One weight per class, or ``None`` for equal weights.
    label_smoothing : float
        Amount of smoothing in ``[0, 1)``.

    Returns
    -------
    torch.nn.CrossEntropyLoss
    """
    return nn.CrossEntropyLoss(weight=class_weight, label_smoothing=label_smoothing)


def label_smoothing(class_weight: torch.Tensor | None = None, smoothing: float = 0.1) -> nn.Module:
    """Cross-entropy against targets smoothed towards the uniform distribution.

    Parameters
    ----------
    class_weight : torch.Tensor or None
        One weight per class, or ``None`` for equal weights.
    smoothing : float
        Probability mass spread over all classes (Szegedy et al., 2016).

    Returns
    -------
    torch.nn.CrossEntropyLoss
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}.")
    return nn.CrossEntropyLoss(weight=class_weight, label_smoothing=smoothing)


@hookimpl
def register_losses() -> list[LossSpec]:
    """Register ``cross_entropy`` and ``label_smoothing``."""
    return [
        LossSpec("cross_entropy", cross_entropy, "softmax cross-entropy; honours class_weight"),
        LossSpec("label_smoothing", label_smoothing, "cross-entropy with smoothed targets (0.1)"),
    ]
