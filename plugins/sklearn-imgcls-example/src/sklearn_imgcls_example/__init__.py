"""Example sklearn-imgcls plugin: a backbone, a loss and an augmentation.

Registered through the ``sklearn_imgcls`` entry point group (see
``pyproject.toml``); sklearn-imgcls finds it after a plain ``pip install``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sklearn_imgcls.plugin import AugmentationSpec, BackboneSpec, LossSpec, hookimpl

__all__ = ["LeNet5", "Poly1Loss", "invert", "register_augmentations", "register_backbones", "register_losses"]


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
    """Poly-1 loss: cross-entropy plus ``epsilon * (1 - p_true)``.

    Parameters
    ----------
    class_weight : torch.Tensor or None
        Per-class weights applied to each sample's loss.
    epsilon : float
        Weight of the first polynomial term (1.0 in the paper's default).
    """

    def __init__(self, class_weight: torch.Tensor | None = None, epsilon: float = 1.0) -> None:
        super().__init__()
        self.epsilon = float(epsilon)
        self.register_buffer("class_weight", class_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ce = F.cross_entropy(logits, targets, reduction="none")
        p_true = torch.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        loss = ce + self.epsilon * (1.0 - p_true)
        if self.class_weight is None:
            return loss.mean()
        weights = self.class_weight[targets]
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
def register_backbones():
    """Register ``lenet5``."""
    return [BackboneSpec("lenet5", LeNet5, "LeNet-5 (LeCun et al., 1998), ReLU + max-pool", tags=("scratch", "small"))]


@hookimpl
def register_losses():
    """Register ``poly1``."""
    return [LossSpec("poly1", Poly1Loss, "Poly-1: cross-entropy + epsilon * (1 - p_true)")]


@hookimpl
def register_augmentations():
    """Register ``invert``."""
    return [AugmentationSpec("invert", invert, "flip intensities with probability p")]
