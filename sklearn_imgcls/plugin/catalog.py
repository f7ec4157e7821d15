"""One obvious entry point per component kind: ``list_*`` and ``build_*``.

These are thin, documented front doors to :func:`sklearn_imgcls.get_registry`.
"""

from __future__ import annotations

from typing import Any

from .registry import get_registry

__all__ = [
    "build_augmentation",
    "build_backbone",
    "build_corruption",
    "build_loss",
    "build_sampler",
    "describe_backbones",
    "describe_weights",
    "list_augmentations",
    "list_backbones",
    "list_corruptions",
    "list_losses",
    "list_plugins",
    "list_samplers",
    "weights_source",
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


def weights_source(weights: Any) -> str:
    """Where a :class:`~sklearn_imgcls.plugin.specs.PretrainedWeights` is loaded from, for listings.

    The ``source`` of the loaders in :mod:`sklearn_imgcls.plugin.sources` (a
    URL or a file); for any other callable, its qualified name.
    """
    load = weights.load
    source = getattr(load, "source", None)
    if isinstance(source, str):
        return source
    return getattr(load, "__qualname__", None) or type(load).__name__


def describe_backbones(pretrained: bool | None = None):
    """A table of the installed backbones.

    Parameters
    ----------
    pretrained : bool or None
        True keeps backbones with pretrained weights, False those without.

    Returns
    -------
    pandas.DataFrame
        One row per backbone: ``name``, ``description``, ``weights`` (the
        names ``weights=`` accepts, comma-separated, the default first),
        ``input_size`` (of the default weights, or the spec's), ``mean`` and
        ``std`` (of the default weights), ``weights_source`` (where the
        default weights are loaded from: a URL, a file), ``tags``,
        ``plugin`` (the plugin that registers it) and ``package`` (the
        distribution that installed the plugin).
    """
    import pandas as pd

    registry = get_registry()
    packages = dict(registry.plugins())
    rows = []
    for spec in registry.specs("backbone").values():
        if pretrained is not None and bool(spec.weights) != pretrained:
            continue
        default = spec.default_weights()
        names = [default.name] + [w.name for w in spec.weights if w is not default] if default is not None else []
        rows.append({
            "name": spec.name,
            "description": spec.description,
            "weights": ", ".join(names),
            "input_size": tuple(spec.input_size or default.input_size) if spec.input_size or default else None,
            "mean": tuple(default.mean) if default is not None else None,
            "std": tuple(default.std) if default is not None else None,
            "weights_source": weights_source(default) if default is not None else "",
            "tags": ", ".join(spec.tags),
            "plugin": spec.plugin,
            "package": packages.get(spec.plugin, ""),
        })
    return pd.DataFrame(rows, columns=["name", "description", "weights", "input_size", "mean", "std",
                                       "weights_source", "tags", "plugin", "package"])


def describe_weights(backbone: str | None = None):
    """A table of the pretrained weights the installed backbones declare.

    Parameters
    ----------
    backbone : str or None
        Only this backbone's weights.

    Returns
    -------
    pandas.DataFrame
        One row per weights: ``backbone``, ``weights`` (the name for
        ``weights=``), ``default``, ``num_classes``, ``input_size``, ``mean``,
        ``std``, ``source`` (URL or file), ``cached`` (True when the file is
        on disk, False when it is not or the loader cannot tell) and
        ``description``.
    """
    import pandas as pd

    registry = get_registry()
    specs = [registry.get("backbone", backbone)] if backbone is not None else registry.specs("backbone").values()
    rows = []
    for spec in specs:
        default = spec.default_weights()
        for weights in spec.weights:
            available = getattr(weights.load, "available", None)
            rows.append({
                "backbone": spec.name, "weights": weights.name, "default": weights is default,
                "num_classes": weights.num_classes, "input_size": tuple(weights.input_size),
                "mean": tuple(weights.mean), "std": tuple(weights.std), "source": weights_source(weights),
                "cached": bool(available()) if callable(available) else False, "description": weights.description,
            })
    return pd.DataFrame(rows, columns=["backbone", "weights", "default", "num_classes", "input_size", "mean", "std",
                                       "source", "cached", "description"])


def list_losses(tag: str | None = None) -> list[str]:
    """Names of the installed losses, optionally only those tagged ``tag``."""
    return get_registry().names("loss", tag=tag)


def list_augmentations(tag: str | None = None) -> list[str]:
    """Names of the installed augmentations, optionally only those tagged ``tag``."""
    return get_registry().names("augmentation", tag=tag)


def list_samplers(tag: str | None = None) -> list[str]:
    """Names of the installed samplers, optionally only those tagged ``tag``."""
    return get_registry().names("sampler", tag=tag)


def list_corruptions(tag: str | None = None, family: str | None = None) -> list[str]:
    """Names of the installed image corruptions, optionally only those tagged ``tag`` or of ``family``."""
    specs = get_registry().specs("corruption")
    return [name for name in get_registry().names("corruption", tag=tag) if family is None or specs[name].family == family]


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


def build_corruption(name: str, **params: Any):
    """Build the corruption ``name``; returns ``corrupt(images, severity, generator)``."""
    return get_registry().build("corruption", name, **params)
