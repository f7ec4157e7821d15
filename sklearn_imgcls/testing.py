"""Conformance kit for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

:func:`check_plugin` builds every component a plugin registers and holds it
to the contract of :mod:`sklearn_imgcls.plugin.specs`: shapes and dtypes,
declared layers that exist, soft targets when declared, pickling, seeding.
A failure raises :class:`PluginCheckError` (an ``AssertionError``) whose
message names the plugin, the component, the check and what to fix. The
checks are cheap: tiny inputs on the CPU, seconds per component.

One test per check with pytest::

    from sklearn_imgcls.testing import parametrize_with_checks
    import my_plugin

    @parametrize_with_checks(my_plugin)
    def test_my_plugin(spec, check):
        check(spec)

or iterate :func:`plugin_checks` yourself. Per kind: :func:`check_backbone`,
:func:`check_loss`, :func:`check_augmentation`, :func:`check_sampler`,
:func:`check_corruption` (with :func:`sample_images`, the digits batch the
corruption checks measure on).
PLUGINS.md at the repository root is the plugin author's guide.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Collection, Iterator

from ._core.conformance import PluginCheckError, PluginCheckWarning
from ._core.conformance_backbones import (
    BACKBONE_CHECKS, check_backbone_backward, check_backbone_declared_layers, check_backbone_native,
    check_backbone_output, check_backbone_pickles, check_backbone_seeded, check_backbone_weights,
)
from ._core.conformance_components import (
    AUGMENTATION_CHECKS, LOSS_CHECKS, SPEC_CHECKS, check_augmentation_batch,
    check_augmentation_declares_mixing, check_augmentation_seeded, check_loss_class_priors,
    check_loss_integer_targets, check_loss_multilabel_targets, check_loss_pickles, check_loss_sample_weights,
    check_loss_soft_targets, check_spec_fields,
)
from ._core.conformance_samplers import (
    SAMPLER_CHECKS, check_sampler_epoch, check_sampler_seeded, check_sampler_training_split,
)
from ._core.conformance_corruptions import (
    CORRUPTION_CHECKS, check_corruption_batch, check_corruption_fields, check_corruption_monotone,
    check_corruption_seeded, check_corruption_severity_range, sample_images,
)
from ._core.conformance_plugins import SPEC_CLASSES, PluginUnderTest, check_plugin_hooks, collect_plugin, kind_of
from .plugin.specs import ComponentSpec

__all__ = [
    "CHECKS",
    "PluginCheckError",
    "PluginCheckWarning",
    "PluginUnderTest",
    "check_augmentation",
    "check_augmentation_batch",
    "check_augmentation_declares_mixing",
    "check_augmentation_seeded",
    "check_backbone",
    "check_backbone_backward",
    "check_backbone_declared_layers",
    "check_backbone_native",
    "check_backbone_output",
    "check_backbone_pickles",
    "check_backbone_seeded",
    "check_backbone_weights",
    "check_corruption",
    "check_corruption_batch",
    "check_corruption_fields",
    "check_corruption_monotone",
    "check_corruption_seeded",
    "check_corruption_severity_range",
    "check_id",
    "check_loss",
    "check_loss_class_priors",
    "check_loss_integer_targets",
    "check_loss_multilabel_targets",
    "check_loss_pickles",
    "check_loss_sample_weights",
    "check_loss_soft_targets",
    "check_plugin",
    "check_plugin_hooks",
    "check_sampler",
    "check_sampler_epoch",
    "check_sampler_seeded",
    "check_sampler_training_split",
    "check_spec_fields",
    "collect_plugin",
    "parametrize_with_checks",
    "plugin_checks",
    "sample_images",
]

#: component kind -> the checks run on each of its specs (after the spec-field check)
CHECKS = {
    "backbone": BACKBONE_CHECKS,
    "loss": LOSS_CHECKS,
    "augmentation": AUGMENTATION_CHECKS,
    "sampler": SAMPLER_CHECKS,
    "corruption": CORRUPTION_CHECKS,
}
#: the spec-field check of each kind: check_spec_fields, except for corruptions, whose
#: check_corruption_fields also checks family and max_severity
FIELD_CHECKS = {kind: (() if kind == "corruption" else SPEC_CHECKS) for kind in CHECKS}


def _bind(check: Callable, options: dict) -> Callable:
    if not options:
        return check

    @functools.wraps(check)
    def bound(spec: Any) -> None:
        return check(spec, **options)

    return bound


def _selected(spec: ComponentSpec, select: Any) -> bool:
    if select is None:
        return True
    return bool(select(spec)) if callable(select) else spec.name in select


def _spec_checks(spec: ComponentSpec, options: dict) -> Iterator[tuple[ComponentSpec, Callable]]:
    kind = kind_of(spec)
    for check in FIELD_CHECKS[kind] + CHECKS[kind]:
        if check.applies(spec):
            yield spec, _bind(check, options)


def plugin_checks(
    plugin: Any, *, select: Callable[[ComponentSpec], bool] | Collection[str] | None = None, **options: Any
) -> Iterator[tuple[Any, Callable[[Any], None]]]:
    """Yield ``(spec, check)`` pairs for every check of a plugin; run each as ``check(spec)``.

    Parameters
    ----------
    plugin : module, object or str
        See :func:`collect_plugin`.
    select : callable, collection of str or None
        Keep only components for which ``select(spec)`` is true, or whose
        names are in the collection (e.g. a few small models of a big zoo).
    **options
        ``strict``, ``check_weights``, ``image_sizes``; see
        :class:`~sklearn_imgcls._core.conformance.CheckOptions`.

    Yields
    ------
    spec : ComponentSpec or PluginUnderTest
        What the check is given (the plugin itself for plugin-level checks).
    check : callable
        ``check(spec)`` returns None or raises :class:`PluginCheckError`.
    """
    target = collect_plugin(plugin)
    if select is not None and not callable(select):
        if isinstance(select, str):
            raise TypeError(f"select must be a collection of component names, got the string {select!r}; "
                            f"write select=[{select!r}].")
        unknown = sorted(set(select) - {spec.name for spec in target.specs})
        if unknown:  # a typo would otherwise check nothing and pass
            raise ValueError(f"select names {unknown}, which plugin {target.plugin!r} does not register; it registers "
                             f"{', '.join(sorted(spec.name for spec in target.specs)) or 'nothing'}.")
    yield target, _bind(check_plugin_hooks, options)
    for spec in target.specs:
        if _selected(spec, select):
            yield from _spec_checks(spec, options)


def check_id(value: Any) -> str:
    """A readable pytest id for the values :func:`plugin_checks` yields (``ids=check_id``)."""
    if isinstance(value, PluginUnderTest):
        return value.plugin
    if isinstance(value, ComponentSpec):
        return f"{value.plugin}:{kind_of(value)}:{value.name}" if value.plugin else f"{kind_of(value)}:{value.name}"
    return getattr(value, "__name__", repr(value))


def parametrize_with_checks(plugins: Any, *, select: Any = None, **options: Any):
    """A ``pytest.mark.parametrize`` decorator over every check of one or more plugins.

    Parameters
    ----------
    plugins : plugin or list of plugins
        Modules, objects or names (see :func:`collect_plugin`).
    select, **options
        As for :func:`plugin_checks`.

    Returns
    -------
    pytest.MarkDecorator
        Parametrizes the arguments ``spec`` and ``check``; the test body is
        ``check(spec)``. Ids read ``plugin:kind:name-check_name``.
    """
    import pytest

    plugins = plugins if isinstance(plugins, (list, tuple)) else [plugins]
    pairs = [pair for plugin in plugins for pair in plugin_checks(plugin, select=select, **options)]
    return pytest.mark.parametrize("spec, check", pairs, ids=check_id)


def _run(pairs: list[tuple[Any, Callable]], owner: str) -> list[str]:
    failures: list[PluginCheckError] = []
    for spec, check in pairs:
        try:
            check(spec)
        except PluginCheckError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    if failures:
        error = PluginCheckError(
            f"{len(failures)} of {len(pairs)} checks failed:\n" + "\n".join(f"- {f}" for f in failures),
            plugin=owner, kind="plugin",
        )
        error.failures = failures
        raise error
    return [f"{check_id(spec)}-{check.__name__}" for spec, check in pairs]


def check_plugin(
    plugin: Any, *, select: Callable[[ComponentSpec], bool] | Collection[str] | None = None, **options: Any
) -> list[str]:
    """Run every check on every component a plugin registers.

    Parameters
    ----------
    plugin : module, object or str
        See :func:`collect_plugin`.
    select, **options
        As for :func:`plugin_checks` (``strict=True`` turns warnings about
        undeclared layers and deprecated hook names into failures;
        ``check_weights=True`` loads each declared pretrained weights).

    Returns
    -------
    list of str
        The checks that ran, as ``plugin:kind:name-check_name``.

    Raises
    ------
    PluginCheckError
        After all checks ran, when any failed: one failure's error, or one
        listing them all (``.failures`` holds each).
    """
    target = collect_plugin(plugin)
    return _run(list(plugin_checks(target, select=select, **options)), target.plugin)


def _checkkind_of(kind: str, spec: Any, options: dict) -> list[str]:
    from .plugin.registry import get_registry

    if isinstance(spec, str):
        spec = get_registry().get(kind, spec)
    spec_cls = SPEC_CLASSES[kind]
    if not isinstance(spec, spec_cls):
        raise TypeError(f"check_{kind} takes a {spec_cls.__name__} or a registered {kind} name, got {spec!r}.")
    return _run(list(_spec_checks(spec, options)), spec.plugin)


def check_backbone(spec: Any, **options: Any) -> list[str]:
    """Run the backbone checks on one :class:`~sklearn_imgcls.plugin.specs.BackboneSpec` (or registered name).

    Builds with 1 and 3 input channels at a small and a non-square size,
    checks the logits, backward, the declared ``classifier`` / ``first_conv``
    / ``target_layer`` (also in ``build_native``), the declared weights
    (loaded only with ``check_weights=True``), pickling and seeding. Options
    as for :func:`check_plugin`; returns the checks run, raises
    :class:`PluginCheckError`.
    """
    return _checkkind_of("backbone", spec, options)


def check_loss(spec: Any, **options: Any) -> list[str]:
    """Run the loss checks on one :class:`~sklearn_imgcls.plugin.specs.LossSpec` (or registered name).

    Integer targets (a ``multilabel`` loss: a 0/1 label matrix instead),
    then what the spec declares: ``soft_targets``, ``sample_weights``,
    ``needs_class_priors``; and pickling. Returns the
    checks run, raises :class:`PluginCheckError`.
    """
    return _checkkind_of("loss", spec, options)


def check_augmentation(spec: Any, **options: Any) -> list[str]:
    """Run the augmentation checks on one :class:`~sklearn_imgcls.plugin.specs.AugmentationSpec` (or name).

    Shape and dtype kept, input not modified in place, seeded by the
    generator argument, ``mixes_labels`` as declared. Returns the checks
    run, raises :class:`PluginCheckError`.
    """
    return _checkkind_of("augmentation", spec, options)


def check_sampler(spec: Any, **options: Any) -> list[str]:
    """Run the sampler checks on one :class:`~sklearn_imgcls.plugin.specs.SamplerSpec` (or registered name).

    ``stage="epoch"``: in-range int64 indices, seeded by the generator;
    ``stage="training_split"``: a repeatable ``fit_resample``. Returns the
    checks run, raises :class:`PluginCheckError`.
    """
    return _checkkind_of("sampler", spec, options)


def check_corruption(spec: Any, **options: Any) -> list[str]:
    """Run the corruption checks on one :class:`~sklearn_imgcls.plugin.specs.CorruptionSpec` (or registered name).

    The spec's fields (``family``, ``max_severity``); 1-, 3- and 4-channel
    float batches keep shape and dtype and stay in ``[0, 1]`` at every
    severity, severity 0 changes nothing, the input is not modified in
    place; the same generator seed gives the same batch (and a random
    corruption draws per image); severities outside ``0..max_severity`` or
    not integers raise ``ValueError``; the mean absolute change from the
    clean images strictly increases with severity on :func:`sample_images`.
    Returns the checks run, raises :class:`PluginCheckError`.
    """
    return _checkkind_of("corruption", spec, options)
