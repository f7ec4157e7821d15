"""One obvious entry point per component kind: ``list_*`` and ``build_*``.

These are thin, documented front doors to :func:`sklearn_imgcls.get_registry`.
"""

from __future__ import annotations

from typing import Any

from .registry import get_registry

__all__ = [
    "build_augmentation",
    "build_backbone",
    "build_loss",
    "build_sampler",
    "list_augmentations",
    "list_backbones",
    "list_losses",
    "list_plugins",
    "list_samplers",
]


def list_backbones(tag: str | None = None) -> list[str]:
    """Names of the installed backbones, optionally only those tagged ``tag``.

    Tags of the built-ins: ``"scratch"``, ``"small"``, ``"torchvision"``.
    """
    return get_registry().names("backbone", tag=tag)


def list_losses(tag: str | None = None) -> list[str]:
    """Names of the installed losses, optionally only those tagged ``tag``."""
    return get_registry().names("loss", tag=tag)


def list_augmentations(tag: str | None = None) -> list[str]:
    """Names of the installed augmentations, optionally only those tagged ``tag``."""
    return get_registry().names("augmentation", tag=tag)


def list_samplers(tag: str | None = None) -> list[str]:
    """Names of the installed samplers, optionally only those tagged ``tag``."""
    return get_registry().names("sampler", tag=tag)


def list_plugins() -> list[tuple[str, str]]:
    """``(plugin name, providing package)`` for every loaded plugin."""
    return get_registry().plugins()


def build_backbone(
    name: str, in_channels: int, num_classes: int, image_size: tuple[int, int], **params: Any
):
    """Build the backbone ``name`` for ``(in_channels, *image_size)`` inputs.

    Returns
    -------
    torch.nn.Module
        Mapping ``(N, in_channels, H, W)`` images to ``(N, num_classes)`` logits.
    """
    return get_registry().build("backbone", name, in_channels, num_classes, tuple(image_size), **params)


def build_loss(name: str, class_weight=None, **params: Any):
    """Build the loss ``name``; returns a module called as ``loss(logits, targets)``."""
    return get_registry().build("loss", name, class_weight=class_weight, **params)


def build_augmentation(name: str, **params: Any):
    """Build the augmentation ``name``; returns ``augment(images, generator)``."""
    return get_registry().build("augmentation", name, **params)


def build_sampler(name: str, **params: Any):
    """Build the sampler ``name``; returns ``sample(y, generator)``."""
    return get_registry().build("sampler", name, **params)
