"""Collecting a plugin's components for the conformance checks (see :mod:`sklearn_imgcls.testing`).

:func:`collect_plugin` registers a plugin with a private pluggy plugin
manager (the process registry is left alone), calls its hooks through
pluggy and returns what they declared; :func:`check_plugin_hooks` is the
plugin-level check (components registered, current hook names).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any

from ..plugin.specs import AugmentationSpec, BackboneSpec, ComponentSpec, CorruptionSpec, LossSpec, SamplerSpec
from .conformance import PluginCheckError, conformance_check

__all__ = ["SPEC_CLASSES", "PluginUnderTest", "check_plugin_hooks", "collect_plugin", "kind_of"]

#: component kind -> the spec class its hook returns
SPEC_CLASSES = {"backbone": BackboneSpec, "loss": LossSpec, "augmentation": AugmentationSpec, "sampler": SamplerSpec,
                "corruption": CorruptionSpec}


@dataclass(frozen=True)
class PluginUnderTest:
    """A plugin and what its hooks returned, collected through a private plugin manager.

    Parameters
    ----------
    plugin : str
        The plugin's name (its entry point name when it has one).
    obj : object
        The plugin module or object.
    specs : tuple of ComponentSpec
        Every spec its hooks returned, with ``plugin`` filled in.
    hooks : tuple of str
        The hooks it implements.
    deprecated_hooks : tuple of str
        The deprecated (unprefixed) hook names among them.
    """

    plugin: str
    obj: object
    specs: tuple[ComponentSpec, ...]
    hooks: tuple[str, ...] = ()
    deprecated_hooks: tuple[str, ...] = ()

    name = ""  # a plugin-level check names no component


def _collect_error(plugin: str, problem: str, fix: str) -> PluginCheckError:
    return PluginCheckError(problem, fix, plugin=plugin, kind="plugin", check="collect_plugin")


def _resolve(plugin: Any) -> tuple[str, object]:
    """``(name, plugin object)`` for a plugin object or the name of one."""
    from ..plugin.discovery import DEFAULT_PLUGINS, ENTRY_POINT_GROUP

    points = list(entry_points(group=ENTRY_POINT_GROUP))
    if not isinstance(plugin, str):
        module = getattr(plugin, "__name__", None)
        named = [ep.name for ep in points if module and ep.value == module]
        return (named[0] if named else module or type(plugin).__name__), plugin
    for ep in points:
        if ep.name == plugin:
            return plugin, ep.load()
    if plugin not in DEFAULT_PLUGINS:
        from ..plugin.registry import get_registry

        registered = get_registry().plugin_manager.get_plugin(plugin)
        if registered is not None:
            return plugin, registered
    try:
        return _resolve(importlib.import_module(plugin))
    except ModuleNotFoundError as exc:
        if exc.name != plugin.split(".")[0] and exc.name != plugin:
            raise
    known = sorted({ep.name for ep in points} | set(DEFAULT_PLUGINS))
    raise _collect_error(plugin, f"no installed plugin or importable module is named {plugin!r} (installed: "
                         f"{', '.join(known)})", "install the plugin package (pip install <path or name>) or pass "
                         "the plugin module itself")


def collect_plugin(plugin: Any) -> PluginUnderTest:
    """Register ``plugin`` with a private plugin manager and collect its specs through pluggy.

    Parameters
    ----------
    plugin : module, object, str or PluginUnderTest
        A plugin module or object, or the name of an installed plugin (its
        entry point name, a built-in module name such as
        ``"sklearn_imgcls.builtin.losses"``, or an importable module).

    Returns
    -------
    PluginUnderTest

    Raises
    ------
    PluginCheckError
        When the plugin cannot be found or registered, a hook fails, returns
        something other than a list of the hook's spec class, or one name is
        registered twice for a kind.
    """
    import pluggy

    from ..plugin import hookspecs
    from ..plugin.discovery import PluginError, register_validated
    if isinstance(plugin, PluginUnderTest):
        return plugin
    name, obj = _resolve(plugin)
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    try:
        with warnings.catch_warnings():  # deprecated hook names are reported by check_plugin_hooks
            warnings.simplefilter("ignore", hookspecs.PluginDeprecationWarning)
            register_validated(pm, obj, name)
    except PluginError as exc:
        raise _collect_error(name, str(exc), "implement only the hooks in sklearn_imgcls.plugin.hookspecs, "
                             "decorated with @hookimpl from sklearn_imgcls.plugin") from exc
    specs: list[ComponentSpec] = []
    implemented: list[str] = []
    for kind, spec_cls in SPEC_CLASSES.items():
        seen: set[str] = set()
        for hook_name in (hookspecs.HOOKS[kind], hookspecs.DEPRECATED_HOOKS.get(kind)):
            if hook_name is None:
                continue
            hook = getattr(pm.hook, hook_name)
            if not hook.get_hookimpls():
                continue
            implemented.append(hook_name)
            try:
                results = hook()
            except Exception as exc:  # foreign code
                raise _collect_error(name, f"{hook_name}() raised {type(exc).__name__}: {exc}",
                                     "make the hook return a list of specs without side effects") from exc
            for result in results:
                if not isinstance(result, (list, tuple)):
                    raise _collect_error(name, f"{hook_name}() returned {type(result).__name__}, not a list",
                                         f"return a list of {spec_cls.__name__}")
                for spec in result:
                    if not isinstance(spec, spec_cls):
                        raise _collect_error(name, f"{hook_name}() returned {spec!r}",
                                             f"return {spec_cls.__name__} instances from {hook_name}")
                    if spec.name in seen:
                        raise _collect_error(name, f"{kind} {spec.name!r} is returned twice",
                                             "give every component of a kind its own name")
                    seen.add(spec.name)
                    specs.append(replace(spec, plugin=name))
    deprecated = tuple(h for h in implemented if h in hookspecs.DEPRECATED_HOOKS.values())
    return PluginUnderTest(name, obj, tuple(specs), tuple(implemented), deprecated)


@conformance_check("plugin")
def check_plugin_hooks(ctx) -> None:
    """The plugin registers at least one component, under the current (project-prefixed) hook names."""
    from ..plugin.hookspecs import DEPRECATED_HOOKS, HOOKS

    target: PluginUnderTest = ctx.spec
    ctx.require(target.hooks, "implements none of the sklearn-imgcls hooks",
                "decorate functions named like sklearn_imgcls_register_backbones with @hookimpl")
    ctx.require(target.specs, "its hooks return no components", "return at least one spec from a hook")
    renames = {old: HOOKS[kind] for kind, old in DEPRECATED_HOOKS.items()}
    for old in target.deprecated_hooks:
        ctx.advise(f"implements the deprecated hook {old}", f"rename the function to {renames[old]}")


def kind_of(spec: ComponentSpec) -> str:
    """The component kind of a spec (``"backbone"``, ``"loss"``, ``"augmentation"``, ``"sampler"``, ``"corruption"``)."""
    return next(kind for kind, cls in SPEC_CLASSES.items() if isinstance(spec, cls))
