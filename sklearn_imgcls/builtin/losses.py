"""Built-in losses (plugin): cross-entropy, label smoothing, focal, logit adjustment.

All take logits and integer targets (or class-probability targets, as mixing
augmentations produce: ``soft_targets=True``), honour ``class_weight``, and
have a ``reduction`` attribute that ``"none"`` turns into one loss per sample
(``sample_weights=True``). ``logit_adjustment`` declares
``needs_class_priors=True`` and receives the training set's class frequencies.
"""

from __future__ import annotations

import torch
from torch import nn

from ..plugin.hookspecs import hookimpl
from ..plugin.specs import LossSpec


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


def _as_probabilities(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    if targets.ndim == 2:
        return targets.float()
    return torch.nn.functional.one_hot(targets.long(), num_classes).float()


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): ``-(1 - p_t)^gamma * log p_t``, ``class_weight`` as alpha.

    Parameters
    ----------
    class_weight : torch.Tensor or None
        Per-class weights (the paper's alpha); the mean is weighted like
        PyTorch's weighted cross-entropy.
    gamma : float
        Focusing strength; 0 gives cross-entropy.
    reduction : {"mean", "none"}
        ``"none"`` returns one (class-weighted) loss per sample.
    """

    def __init__(self, class_weight: torch.Tensor | None = None, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}.")
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("class_weight", class_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        log_p = torch.log_softmax(logits, dim=1)
        q = _as_probabilities(targets, logits.shape[1])
        per_sample = -(q * (1 - log_p.exp()) ** self.gamma * log_p).sum(dim=1)
        weights = None if self.class_weight is None else q @ self.class_weight
        if self.reduction == "none":
            return per_sample if weights is None else weights * per_sample
        if weights is None:
            return per_sample.mean()
        return (weights * per_sample).sum() / weights.sum()


class LogitAdjustedLoss(nn.Module):
    """Logit-adjusted cross-entropy (Menon et al., 2021): ``CE(logits + tau * log prior, y)``.

    Training with priors added to the logits and predicting with the raw
    logits targets the balanced error, the metric that matters under class
    imbalance.

    Parameters
    ----------
    class_priors : torch.Tensor
        Training-set class frequencies (the estimator passes them).
    class_weight : torch.Tensor or None
        Per-class weights, as in cross-entropy.
    tau : float
        Strength of the adjustment (1.0 in the paper).
    """

    def __init__(self, class_priors: torch.Tensor, class_weight: torch.Tensor | None = None, tau: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("adjustment", float(tau) * torch.log(torch.as_tensor(class_priors, dtype=torch.float32).clamp_min(1e-12)))
        self.loss = nn.CrossEntropyLoss(weight=class_weight)

    @property
    def reduction(self) -> str:
        """How the per-sample losses are combined, as in :class:`torch.nn.CrossEntropyLoss`."""
        return self.loss.reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        self.loss.reduction = value

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.loss(logits + self.adjustment, targets)


def focal(class_weight: torch.Tensor | None = None, gamma: float = 2.0) -> nn.Module:
    """Focal loss; see :class:`FocalLoss`."""
    return FocalLoss(class_weight, gamma)


def logit_adjustment(
    class_weight: torch.Tensor | None = None, class_priors: torch.Tensor | None = None, tau: float = 1.0
) -> nn.Module:
    """Logit-adjusted cross-entropy; see :class:`LogitAdjustedLoss`."""
    if class_priors is None:
        raise ValueError("logit_adjustment needs class_priors (the estimators pass the training frequencies).")
    return LogitAdjustedLoss(class_priors, class_weight, tau)


#: what every built-in loss supports: probability targets (torch's cross-entropy and FocalLoss take
#: them) and ``reduction="none"`` (an attribute of each module)
_SUPPORTS = dict(soft_targets=True, sample_weights=True)


@hookimpl
def sklearn_imgcls_register_losses() -> list[LossSpec]:
    """Register ``cross_entropy``, ``label_smoothing``, ``focal`` and ``logit_adjustment``."""
    return [
        LossSpec("cross_entropy", cross_entropy, "softmax cross-entropy; honours class_weight", **_SUPPORTS),
        LossSpec("label_smoothing", label_smoothing, "cross-entropy with smoothed targets (0.1)", **_SUPPORTS),
        LossSpec("focal", focal, "focal loss (Lin et al., 2017), gamma=2; class_weight as alpha", tags=("imbalance",),
                 **_SUPPORTS),
        LossSpec(
            "logit_adjustment", logit_adjustment, "logit-adjusted CE (Menon et al., 2021) for balanced error",
            tags=("imbalance",), needs_class_priors=True, **_SUPPORTS,
        ),
    ]
