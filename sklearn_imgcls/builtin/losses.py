"""Built-in losses (plugin): cross-entropy, label smoothing, focal, logit adjustment; binary cross-entropy and
binary focal for multi-label targets.

The multi-class losses take logits and integer targets (or class-probability targets, as mixing
augmentations produce: ``soft_targets=True``), honour ``class_weight``, and
have a ``reduction`` attribute that ``"none"`` turns into one loss per sample
(``sample_weights=True``). ``logit_adjustment`` declares
``needs_class_priors=True`` and receives the training set's class frequencies.

``binary_cross_entropy`` and ``binary_focal`` declare ``multilabel=True``: one
independent sigmoid per label, ``(N, n_labels)`` 0/1 targets (in [0, 1] after
mixup/cutmix), ``class_weight`` as each label's ``pos_weight``, and with
``reduction="none"`` one loss per image (the mean over its labels).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

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


def _indicator_targets(targets: torch.Tensor, n_labels: int) -> torch.Tensor:
    """``(N, n_labels)`` float targets; class indices become one-hot rows (one label per image)."""
    if targets.ndim == 1:
        return F.one_hot(targets.long(), n_labels).float()
    return targets.float()


class _MultiLabelLoss(nn.Module):
    """Per-label losses averaged over labels (per image) and over images (``reduction="mean"``)."""

    def __init__(self, class_weight: torch.Tensor | None, reduction: str) -> None:
        super().__init__()
        self.reduction = reduction
        self.register_buffer("pos_weight", None if class_weight is None else torch.as_tensor(class_weight).float())

    def per_label(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        per_image = self.per_label(logits.float(), _indicator_targets(targets, logits.shape[1])).mean(dim=1)
        return per_image if self.reduction == "none" else per_image.mean()


class BinaryCrossEntropyLoss(_MultiLabelLoss):
    """Binary cross-entropy on logits, one sigmoid per label (torch's ``binary_cross_entropy_with_logits``).

    Parameters
    ----------
    class_weight : torch.Tensor or None
        The weight of each label's positive images (``pos_weight``; the
        estimators pass ``negatives / positives`` for ``class_weight="balanced"``).
    reduction : {"mean", "none"}
        ``"none"`` returns one loss per image, the mean over its labels.
    """

    def __init__(self, class_weight: torch.Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__(class_weight, reduction)

    def per_label(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight, reduction="none")


class BinaryFocalLoss(_MultiLabelLoss):
    """Sigmoid focal loss (Lin et al., 2017) per label, from :func:`torchvision.ops.sigmoid_focal_loss`.

    Parameters
    ----------
    class_weight : torch.Tensor or None
        The weight of each label's positive images (multiplies their terms).
    gamma : float
        Focusing strength; 0 gives binary cross-entropy.
    alpha : float or None
        The paper's balance of positives (``alpha``) against negatives
        (``1 - alpha``), in [0, 1]; None (the default) weighs them equally,
        leaving balancing to ``class_weight``.
    reduction : {"mean", "none"}
        ``"none"`` returns one loss per image, the mean over its labels.
    """

    def __init__(self, class_weight: torch.Tensor | None = None, gamma: float = 2.0, alpha: float | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(class_weight, reduction)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}.")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be None or in [0, 1], got {alpha!r}.")
        self.gamma = float(gamma)
        self.alpha = alpha

    def per_label(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        from torchvision.ops import sigmoid_focal_loss

        alpha = -1.0 if self.alpha is None else float(self.alpha)  # torchvision: a negative alpha weighs nothing
        loss = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=self.gamma, reduction="none")
        if self.pos_weight is not None:
            loss = loss * (targets * self.pos_weight + (1 - targets))
        return loss


def binary_cross_entropy(class_weight: torch.Tensor | None = None) -> nn.Module:
    """Binary cross-entropy for multi-label targets; see :class:`BinaryCrossEntropyLoss`."""
    return BinaryCrossEntropyLoss(class_weight)


def binary_focal(class_weight: torch.Tensor | None = None, gamma: float = 2.0, alpha: float | None = None) -> nn.Module:
    """Sigmoid focal loss for multi-label targets; see :class:`BinaryFocalLoss`."""
    return BinaryFocalLoss(class_weight, gamma, alpha)


#: what every built-in loss supports: probability targets (torch's cross-entropy and FocalLoss take
#: them) and ``reduction="none"`` (an attribute of each module)
_SUPPORTS = dict(soft_targets=True, sample_weights=True)


@hookimpl
def sklearn_imgcls_register_losses() -> list[LossSpec]:
    """Register ``cross_entropy``, ``label_smoothing``, ``focal``, ``logit_adjustment`` and the multi-label
    ``binary_cross_entropy`` and ``binary_focal``."""
    return [
        LossSpec("cross_entropy", cross_entropy, "softmax cross-entropy; honours class_weight", **_SUPPORTS),
        LossSpec("label_smoothing", label_smoothing, "cross-entropy with smoothed targets (0.1)", **_SUPPORTS),
        LossSpec("focal", focal, "focal loss (Lin et al., 2017), gamma=2; class_weight as alpha", tags=("imbalance",),
                 **_SUPPORTS),
        LossSpec(
            "logit_adjustment", logit_adjustment, "logit-adjusted CE (Menon et al., 2021) for balanced error",
            tags=("imbalance",), needs_class_priors=True, **_SUPPORTS,
        ),
        LossSpec("binary_cross_entropy", binary_cross_entropy,
                 "multi-label: a sigmoid per label; class_weight as each label's pos_weight", tags=("multilabel",),
                 multilabel=True, **_SUPPORTS),
        LossSpec("binary_focal", binary_focal, "multi-label sigmoid focal loss (Lin et al., 2017), gamma=2",
                 tags=("multilabel", "imbalance"), multilabel=True, **_SUPPORTS),
    ]
