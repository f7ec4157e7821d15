"""Frozen dataclasses that describe the components plugins contribute.

A plugin never hands the registry a live object: it hands a *spec*, a small
immutable record with a name, a one-line description and a ``build`` callable
that makes the component when an estimator is fitted. The registry fills in
``plugin`` (which plugin contributed the spec) when it collects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "AugmentationSpec",
    "BackboneSpec",
    "ComponentSpec",
    "LossSpec",
    "SamplerSpec",
]


@dataclass(frozen=True)
class ComponentSpec:
    """Fields every component kind shares.

    Parameters
    ----------
    name : str
        Registry name users pass to estimators (``backbone="resnet18"``).
    build : callable
        Factory that makes the component; its signature depends on the kind.
    description : str
        One line shown by ``list_*()`` and the command line.
    tags : tuple of str
        Free-form labels usable as filters in ``list_*(tag=...)``.
    plugin : str
        Name of the plugin that registered the spec; set by the registry.
    """

    name: str
    build: Callable[..., Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class BackboneSpec(ComponentSpec):
    """A network architecture.

    ``build(in_channels, num_classes, image_size, **params)`` returns a
    :class:`torch.nn.Module` mapping ``(N, in_channels, H, W)`` float tensors to
    ``(N, num_classes)`` logits, where ``image_size == (H, W)``.

    Parameters
    ----------
    target_layer : str or None
        Dotted name of the layer explanations (Grad-CAM) should look at; ``None``
        means "the last convolution".
    weights : tuple of str
        Names of the pretrained weights available for the architecture
        (torchvision's, e.g. ``"IMAGENET1K_V1"``); empty when there are none.
    input_size : tuple of int or None
        ``(H, W)`` the pretrained weights expect.
    """

    target_layer: str | None = None
    weights: tuple[str, ...] = ()
    input_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class LossSpec(ComponentSpec):
    """A training loss.

    ``build(class_weight=None, **params)`` returns a module called as
    ``loss(logits, targets)`` where ``targets`` are integer class indices and
    ``class_weight`` is ``None`` or a float tensor with one weight per class.
    """


@dataclass(frozen=True)
class AugmentationSpec(ComponentSpec):
    """A training-time augmentation on whole batches.

    ``build(**params)`` returns a callable ``augment(images, generator)`` that
    takes a float batch ``(N, C, H, W)`` and a :class:`torch.Generator` and
    returns a batch of the same shape and dtype.
    """


@dataclass(frozen=True)
class SamplerSpec(ComponentSpec):
    """A per-epoch resampling of the training set.

    ``build(**params)`` returns a callable ``sample(y, generator)`` taking the
    encoded training labels (1-D int64 tensor) and returning the indices
    (1-D int64 tensor) the epoch should visit, in order.
    """
