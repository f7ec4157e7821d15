"""Hook specifications: the contract between sklearn-imgcls and its plugins.

A plugin is any module or object with functions decorated by
:data:`hookimpl`. Each hook takes no arguments and returns a list of specs
(:mod:`sklearn_imgcls.plugin.specs`); the registry calls every hook through
pluggy, one plugin at a time (``pm.subset_hook_caller``, so hook wrappers,
tracing and monitoring run, and each spec keeps the name of the plugin that
gave it) and collects the lists. Built-in components are plugins too (see
:mod:`sklearn_imgcls.builtin`).

Hook names carry the project prefix (``sklearn_imgcls_register_backbones``),
as pytest's do. The unprefixed names of the first release
(``register_backbones``, ...) still work for a deprecation period: a plugin
that implements them gets a :class:`PluginDeprecationWarning` naming the new
hook (a ``FutureWarning``, so Python shows it by default, in scripts and
notebooks too, unlike a ``DeprecationWarning``).

Third-party packages announce plugins through the ``sklearn_imgcls`` entry
point group::

    [project.entry-points.sklearn_imgcls]
    my_plugin = "my_package.plugin"
"""

from __future__ import annotations

import pluggy

from .specs import AugmentationSpec, BackboneSpec, CorruptionSpec, LossSpec, SamplerSpec

PROJECT_NAME = "sklearn_imgcls"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: hook name of each component kind, and the first release's name for it (deprecated)
HOOKS = {
    "backbone": "sklearn_imgcls_register_backbones",
    "loss": "sklearn_imgcls_register_losses",
    "augmentation": "sklearn_imgcls_register_augmentations",
    "sampler": "sklearn_imgcls_register_samplers",
    "corruption": "sklearn_imgcls_register_corruptions",
}
DEPRECATED_HOOKS = {
    "backbone": "register_backbones",
    "loss": "register_losses",
    "augmentation": "register_augmentations",
    "sampler": "register_samplers",
}

__all__ = [
    "DEPRECATED_HOOKS",
    "PluginDeprecationWarning",
    "HOOKS",
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "register_augmentations",
    "register_backbones",
    "register_losses",
    "register_samplers",
    "sklearn_imgcls_register_augmentations",
    "sklearn_imgcls_register_backbones",
    "sklearn_imgcls_register_corruptions",
    "sklearn_imgcls_register_losses",
    "sklearn_imgcls_register_samplers",
]


@hookspec
def sklearn_imgcls_register_backbones() -> list[BackboneSpec]:
    """Return the backbones (network architectures) this plugin provides.

    Returns
    -------
    list of BackboneSpec
        ``spec.build(in_channels, num_classes, image_size, **params)`` must
        return a module producing ``(N, num_classes)`` logits; ``classifier``,
        ``first_conv``, ``target_layer``, ``build_native`` and ``weights``
        declare what transfer learning and Grad-CAM need.
    """


@hookspec
def sklearn_imgcls_register_losses() -> list[LossSpec]:
    """Return the training losses this plugin provides.

    Returns
    -------
    list of LossSpec
        ``spec.build(class_weight=None, **params)`` must return a module called
        as ``loss(logits, targets)``; ``soft_targets``, ``needs_class_priors``
        and ``sample_weights`` declare what else it supports.
    """


@hookspec
def sklearn_imgcls_register_augmentations() -> list[AugmentationSpec]:
    """Return the batch augmentations this plugin provides.

    Returns
    -------
    list of AugmentationSpec
        ``spec.build(**params)`` must return ``augment(images, generator)``
        that keeps the batch's shape and dtype (``mixes_labels``: see the spec).
    """


@hookspec
def sklearn_imgcls_register_samplers() -> list[SamplerSpec]:
    """Return the training-set samplers this plugin provides.

    Returns
    -------
    list of SamplerSpec
        ``spec.build(**params)`` must return what ``spec.stage`` says: a
        per-epoch ``sample(y, generator)`` or a ``fit_resample`` object.
    """


@hookspec
def sklearn_imgcls_register_corruptions() -> list[CorruptionSpec]:
    """Return the image corruptions (noise, blur, occlusion, ...) this plugin provides.

    Returns
    -------
    list of CorruptionSpec
        ``spec.build(**params)`` must return ``corrupt(images, severity,
        generator)`` keeping shape, dtype and the ``[0, 1]`` range; see
        :func:`sklearn_imgcls.robustness.corruption_report`.
    """


class PluginDeprecationWarning(FutureWarning):
    """A plugin uses a hook name that will be removed; the message names the plugin and the new name."""


def _deprecated(new: str) -> PluginDeprecationWarning:
    return PluginDeprecationWarning(
        f"this hook name is deprecated since sklearn-imgcls 0.2 and will be removed in 0.4: rename the "
        f"function to {new} (same return value)"
    )


@hookspec(warn_on_impl=_deprecated(HOOKS["backbone"]))
def register_backbones() -> list[BackboneSpec]:
    """Deprecated name of :func:`sklearn_imgcls_register_backbones`."""


@hookspec(warn_on_impl=_deprecated(HOOKS["loss"]))
def register_losses() -> list[LossSpec]:
    """Deprecated name of :func:`sklearn_imgcls_register_losses`."""


@hookspec(warn_on_impl=_deprecated(HOOKS["augmentation"]))
def register_augmentations() -> list[AugmentationSpec]:
    """Deprecated name of :func:`sklearn_imgcls_register_augmentations`."""


@hookspec(warn_on_impl=_deprecated(HOOKS["sampler"]))
def register_samplers() -> list[SamplerSpec]:
    """Deprecated name of :func:`sklearn_imgcls_register_samplers`."""
