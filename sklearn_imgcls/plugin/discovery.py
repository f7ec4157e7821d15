"""Plugin discovery: our built-in plugins plus third-party entry points.

Nothing here runs at import time. :func:`make_plugin_manager` builds a fresh
:class:`pluggy.PluginManager` on demand; the registry calls it once, lazily.

Set the environment variable ``SKLEARN_IMGCLS_BLOCK_PLUGINS`` to a
comma-separated list of plugin names (see ``sklearn-imgcls plugins`` or
:func:`sklearn_imgcls.list_plugins`) to keep those plugins from loading.

A plugin implementing a deprecated hook name (``register_losses``, ...) is
registered and works, with a :class:`~sklearn_imgcls.plugin.hookspecs.PluginDeprecationWarning` that names the
plugin, the old hook and the new one, attributed to the plugin's function
(file and line). Python shows it under pytest, ``python -X dev`` and
``-W default``; :meth:`Registry.deprecated_hook_users
<sklearn_imgcls.plugin.registry.Registry.deprecated_hook_users>` lists them
for tools.
"""

from __future__ import annotations

import importlib
import os
import warnings
from importlib.metadata import entry_points
from typing import Iterable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "sklearn_imgcls"
BLOCK_ENV_VAR = "SKLEARN_IMGCLS_BLOCK_PLUGINS"

#: Our own components, registered exactly like a third party's plugin.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sklearn_imgcls.builtin.cnn_backbones",
    "sklearn_imgcls.builtin.torchvision_backbones",
    "sklearn_imgcls.builtin.losses",
    "sklearn_imgcls.builtin.augmentations",
    "sklearn_imgcls.builtin.mixing",
    "sklearn_imgcls.builtin.policy_augmentations",
    "sklearn_imgcls.builtin.samplers",
    "sklearn_imgcls.builtin.corruptions",
    "sklearn_imgcls.builtin.corruptions_spatial",
)

__all__ = [
    "BLOCK_ENV_VAR",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginError",
    "blocked_plugin_names",
    "hook_names",
    "make_plugin_manager",
    "register_validated",
]


class PluginError(RuntimeError):
    """A plugin could not be loaded or does not follow the hook contract."""


def blocked_plugin_names() -> set[str]:
    """Return the plugin names listed in ``SKLEARN_IMGCLS_BLOCK_PLUGINS``.

    Returns
    -------
    set of str
        Names stripped of white space; empty entries are ignored.
    """
    raw = os.environ.get(BLOCK_ENV_VAR, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _validate(pm: pluggy.PluginManager, name: str) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        raise PluginError(
            f"plugin {name!r} implements a hook that sklearn-imgcls does not define: "
            f"{exc}. Known hooks: {', '.join(hook_names())} (deprecated, still accepted: "
            f"{', '.join(sorted(hookspecs.DEPRECATED_HOOKS.values()))}). Until the plugin is fixed, "
            f"skip it with SKLEARN_IMGCLS_BLOCK_PLUGINS={name}."
        ) from exc
    plugin = pm.get_plugin(name)
    for kind, old in hookspecs.DEPRECATED_HOOKS.items():
        new = hookspecs.HOOKS[kind]
        if all(any(impl.plugin is plugin for impl in getattr(pm.hook, hook).get_hookimpls()) for hook in (old, new)):
            pm.unregister(name=name)
            raise PluginError(
                f"plugin {name!r} implements both {new} and its deprecated name {old}, so its "
                f"components would be registered twice; remove {old}. Until the plugin is fixed, skip it "
                f"with SKLEARN_IMGCLS_BLOCK_PLUGINS={name}."
            )


def hook_names() -> list[str]:
    """Return the current (project-prefixed) hook names, sorted."""
    return sorted(hookspecs.HOOKS.values())


def _deprecation_messages(pm: pluggy.PluginManager) -> dict[int, str]:
    """``id(warning instance) -> deprecated hook name`` for the hookspecs' ``warn_on_impl`` warnings."""
    return {id(getattr(pm.hook, old).spec.warn_on_impl): old for old in hookspecs.DEPRECATED_HOOKS.values()}


def register_validated(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin`` under ``name`` and check that it implements only hooks we define.

    Deprecated hook names are accepted; pluggy's ``warn_on_impl`` warning is
    re-issued with the plugin's name and the old hook's name added (same
    category, file and line: the plugin's function).

    Raises
    ------
    PluginError
        When pluggy rejects the plugin, it implements an unknown hook, or it
        implements a hook under both its new and its deprecated name (the
        plugin is unregistered again); the message names the plugin.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} is not a valid sklearn-imgcls plugin: {exc}") from exc
    _validate(pm, name)
    deprecated = _deprecation_messages(pm)
    for record in caught:
        message = record.message
        if id(message) in deprecated:
            message = type(message)(f"plugin {name!r} implements the deprecated hook {deprecated[id(message)]}: "
                                    f"{message}")
        warnings.warn_explicit(message, record.category, record.filename, record.lineno, source=record.source)


def make_plugin_manager(
    *,
    default_plugins: Iterable[str] = DEFAULT_PLUGINS,
    load_entry_points: bool = True,
    blocked: Iterable[str] | None = None,
) -> tuple[pluggy.PluginManager, dict[str, str]]:
    """Build a plugin manager with the built-in and installed plugins.

    Parameters
    ----------
    default_plugins : iterable of str
        Importable module names registered first, under their module name.
    load_entry_points : bool
        Whether to load third-party plugins from the ``sklearn_imgcls`` entry
        point group.
    blocked : iterable of str or None
        Plugin names not to load; ``None`` reads ``SKLEARN_IMGCLS_BLOCK_PLUGINS``.

    Returns
    -------
    pm : pluggy.PluginManager
        With the hook specifications added and the plugins registered.
    distributions : dict of str to str
        Plugin name to the name of the package that provides it
        (``"sklearn-imgcls"`` for the built-ins).

    Raises
    ------
    PluginError
        When a plugin fails to import or implements an unknown hook. The
        message names the plugin and how to block it.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    distributions: dict[str, str] = {}
    for name in blocked_plugin_names() if blocked is None else blocked:
        pm.set_blocked(name)
    for module_name in default_plugins:
        if not pm.is_blocked(module_name):
            register_validated(pm, importlib.import_module(module_name), module_name)
            distributions[module_name] = "sklearn-imgcls"
    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            dist = getattr(ep.dist, "name", "unknown distribution")
            try:
                plugin = ep.load()
            except Exception as exc:  # any import-time failure of foreign code
                raise PluginError(
                    f"plugin {ep.name!r} (from the package {dist!r}) failed to import: "
                    f"{type(exc).__name__}: {exc}. Fix or uninstall that package, or set "
                    f"{BLOCK_ENV_VAR}={ep.name} to skip it."
                ) from exc
            register_validated(pm, plugin, ep.name)
            distributions[ep.name] = dist
    return pm, distributions
