"""Hook specifications: the contract between sklearn-imgcls and its plugins.

A plugin is any module or object with functions decorated by
:data:`hookimpl`. Each hook takes no arguments and returns a list of specs;
the registry flattens the lists of every plugin. Built-in components are
plugins too (see :mod:`sklearn_imgcls.builtin`).

Third-party packages announce plugins through the ``sklearn_imgcls`` entry
point group::

    [project.entry-points.sklearn_imgcls]
    my_plugin = "my_package.plugin"
"""

from __future__ import annotations

import pluggy

from .specs import AugmentationSpec, BackboneSpec, LossSpec, SamplerSpec

PROJECT_NAME = "sklearn_imgcls"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "register_augmentations",
    "register_backbones",
    "register_losses",
    "register_samplers",
]


@hookspec
def register_backbones() -> list[BackboneSpec]:
    """Return the backbones (network architectures) this plugin provides.

    Returns
    -------
    list of BackboneSpec
        ``spec.build(in_channels, num_classes, image_size, **params)`` must
        return a module producing ``(N, num_classes)`` logits.
    """


@hookspec
def register_losses() -> list[LossSpec]:
    """Return the training losses this plugin provides.

    Returns
    -------
    list of LossSpec
        ``spec.build(class_weight=None, **params)`` must return a module called
        as ``loss(logits, targets)``.
    """


@hookspec
def register_augmentations() -> list[AugmentationSpec]:
    """Return the batch augmentations this plugin provides.

    Returns
    -------
    list of AugmentationSpec
        ``spec.build(**params)`` must return ``augment(images, generator)``
        that keeps the batch's shape and dtype.
    """


@hookspec
def register_samplers() -> list[SamplerSpec]:
    """Return the training-set samplers this plugin provides.

    Returns
    -------
    list of SamplerSpec
        ``spec.build(**params)`` must return ``sample(y, generator)`` giving
        the indices one epoch visits.
    """
