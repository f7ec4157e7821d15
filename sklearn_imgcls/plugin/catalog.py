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
    "describe_backbones",
    "list_augmentations",
    "list_backbones",
    "list_losses",
    "list_plugins",
    "list_samplers",
]


def list_backbones(tag: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Names of the installed backbones.

    Parameters
    ----------
    tag : str or None
        Keep those tagged ``tag`` (built-ins: ``"scratch"``, ``"small"``,
        ``"torchvision"``, ``"pretrained"``).
    pretrained : bool or None
        True keeps backbones with pretrained weights (see
        :func:`describe_backbones` for names and input sizes), False those without.
    """
    specs = get_registry().specs("backbone")
    return [
        name for name in get_registry().names("backbone", tag=tag)
        if pretrained is None or bool(specs[name].weights) == pretrained
    ]


def describe_backbones(pretrained: bool | None = None):
    """A table of the installed backbones.

    Parameters
    ----------
    pretrained : bool or None
        True keeps backbones with pretrained weights, False those without.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``description``, ``weights`` (names, comma-separated),
        ``input_size`` of the weights, ``tags`` and ``plugin``.
    """
    import pandas as pd

    rows = [
        {
            "name": spec.name,
            "description": spec.description,
            "weights": ", ".join(spec.weights),
            "input_size": spec.input_size,
            "tags": ", ".join(spec.tags),
            "plugin": spec.plugin,
        }
        for spec in get_registry().specs("backbone").values()
        if pretrained is None or bool(spec.weights) == pretrained
    ]
    return pd.DataFrame(rows, columns=["name", "description", "weights", "input_size", "tags", "plugin"])


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
