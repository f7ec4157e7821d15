"""Example sklearn-imgcls plugin: a backbone, a loss and an augmentation.

Registered through the ``sklearn_imgcls`` entry point group (see
``pyproject.toml``); sklearn-imgcls finds it after a plain ``pip install``.
Written against plugin contract v2: project-prefixed hook names, and specs
that declare what the core must know (``LossSpec(soft_targets=True,
sample_weights=True)``: ``poly1`` trains under mixup/cutmix and with
``fit(sample_weight=...)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sklearn_imgcls.plugin import AugmentationSpec, BackboneSpec, LossSpec, hookimpl

__version__ = "0.2.0"

__all__ = [
    "LeNet5",
    "Poly1Loss",
    "invert",
    "sklearn_imgcls_register_augmentations",
    "sklearn_imgcls_register_backbones",
    "sklearn_imgcls_register_losses",
]


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max-pooling; pads inputs smaller than 5x5 per side.

    Parameters
    ----------
    in_channels, num_classes : int
        Input channels and output logits.
    image_size : tuple of int
        ``(H, W)`` of the inputs.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        height, width = image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(6, 16, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d((max(1, height // 4), max(1, width // 4))),
        )
        flat = 16 * max(1, height // 4) * max(1, width // 4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.classifier(self.features(x))


class Poly1Loss(nn.Module):
    """Poly-1 loss (Leng et al., 2022): cross-entropy plus ``epsilon * (1 - p_t)``.

    Targets are class indices ``(N,)`` or class probabilities ``(N, C)``
    (what mixup and cutmix produce); with probabilities ``q``, cross-entropy
    is ``-sum(q * log p)`` and ``p_t = sum(q * p)``, as in the paper's
    label-smoothed variant. Indices and their one-hot rows give equal losses.

    Parameters
    ----------
    class_weight : torch.Tensor or None
        Per-class weights; a sample's weight is ``q @ class_weight`` and the
        mean is weighted (like PyTorch's weighted cross-entropy).
    epsilon : float
        Weight of the first polynomial term (1.0 in the paper's default).
    reduction : {"mean", "none"}
        ``"none"`` returns one (class-weighted) loss per sample; sklearn-imgcls
        sets it for ``fit(sample_weight=...)``.
    """

    def __init__(self, class_weight: torch.Tensor | None = None, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.epsilon = float(epsilon)
        self.reduction = reduction
        self.register_buffer("class_weight", class_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        log_p = torch.log_softmax(logits, dim=1)
        q = targets.to(log_p.dtype) if targets.ndim == 2 else F.one_hot(targets.long(), logits.shape[1]).to(log_p.dtype)
        ce = -(q * log_p).sum(dim=1)
        p_true = (q * log_p.exp()).sum(dim=1)
        loss = ce + self.epsilon * (1.0 - p_true)
        weights = None if self.class_weight is None else q @ self.class_weight.to(log_p.dtype)
        if self.reduction == "none":
            return loss if weights is None else loss * weights
        if weights is None:
            return loss.mean()
        return (loss * weights).sum() / weights.sum()


def invert(p: float = 0.5):
    """Return an augmentation that flips intensities (``min + max - x``) with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}.")

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = torch.rand(images.shape[0], generator=generator) < p
        flat = images.flatten(1)
        low = flat.min(dim=1).values.view(-1, 1, 1, 1)
        high = flat.max(dim=1).values.view(-1, 1, 1, 1)
        return torch.where(chosen.view(-1, 1, 1, 1), low + high - images, images)

    return augment


@hookimpl
def sklearn_imgcls_register_backbones() -> list[BackboneSpec]:
    """Register ``lenet5``."""
    return [
        BackboneSpec(
            "lenet5", LeNet5, "LeNet-5 (LeCun et al., 1998), ReLU + max-pool", tags=("scratch", "small"),
            classifier="classifier.5", first_conv="features.0", target_layer="features.4",
        )
    ]


@hookimpl
def sklearn_imgcls_register_losses() -> list[LossSpec]:
    """Register ``poly1`` (soft targets and per-sample weights supported)."""
    return [
        LossSpec("poly1", Poly1Loss, "Poly-1: cross-entropy + epsilon * (1 - p_true)", soft_targets=True,
                 sample_weights=True)
    ]


@hookimpl
def sklearn_imgcls_register_augmentations() -> list[AugmentationSpec]:
    """Register ``invert`` (per image: ``mixes_labels`` stays False)."""
    return [AugmentationSpec("invert", invert, "flip intensities with probability p")]
