"""The component registry: list, look up and build components by name.

One :class:`Registry` collects the specs every plugin returns from its hooks,
refuses duplicate names (naming both plugins) and answers unknown names with
the close matches and the full list of what is available.

Hooks are called through pluggy, one plugin at a time
(``pm.subset_hook_caller(hook, remove_plugins=<the other plugins>)``), so
pluggy's hook wrappers, ``enable_tracing`` and ``add_hookcall_monitoring``
see every call, and each spec keeps the name of the plugin that returned it
(duplicates name both plugins; listings show the source). The trade-off
against one ``pm.hook.<name>()`` call: a hook wrapper (``@hookimpl(wrapper=True)``,
from a plugin that implements the hook only as a wrapper) wraps *each*
plugin's contribution -- it receives that plugin's list (as pluggy's list of
results) and returns what to keep, so it can drop, replace or re-tag specs;
a component a wrapper appended would come back once per plugin, so plugins
add components by implementing the hook itself.

:func:`get_registry` builds the process-wide registry lazily on first use,
so importing the package does no plugin discovery.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from dataclasses import replace
from typing import Any

import pluggy

from .discovery import make_plugin_manager, register_validated
from .hookspecs import DEPRECATED_HOOKS, HOOKS
from .specs import AugmentationSpec, BackboneSpec, ComponentSpec, CorruptionSpec, LossSpec, SamplerSpec

__all__ = [
    "DuplicateComponentError",
    "KINDS",
    "Registry",
    "UnknownComponentError",
    "get_registry",
    "reset_registry",
]

#: component kind -> (hook name, spec class); the deprecated names are in ``DEPRECATED_HOOKS``
KINDS: dict[str, tuple[str, type[ComponentSpec]]] = {
    "backbone": (HOOKS["backbone"], BackboneSpec),
    "loss": (HOOKS["loss"], LossSpec),
    "augmentation": (HOOKS["augmentation"], AugmentationSpec),
    "sampler": (HOOKS["sampler"], SamplerSpec),
    "corruption": (HOOKS["corruption"], CorruptionSpec),
}


class UnknownComponentError(ValueError):
    """A component name that no installed plugin registers."""


class DuplicateComponentError(RuntimeError):
    """Two plugins registered components of one kind under the same name."""


class Registry:
    """Components contributed by the plugins of one plugin manager.

    Parameters
    ----------
    plugin_manager : pluggy.PluginManager
        Manager with :mod:`sklearn_imgcls.plugin.hookspecs` added.
    distributions : dict of str to str, optional
        Plugin name to the package that provides it, for listings.
    """

    def __init__(
        self, plugin_manager: pluggy.PluginManager, distributions: dict[str, str] | None = None
    ) -> None:
        self.plugin_manager = plugin_manager
        self.distributions = dict(distributions or {})
        self._specs: dict[str, dict[str, ComponentSpec]] = {}
        self._legacy: dict[str, set[str]] = {}  # kind -> names collected through a deprecated hook

    # -- plugins ---------------------------------------------------------
    def register_plugin(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object at run time (tests, notebooks).

        Parameters
        ----------
        plugin : object
            Module or object with ``@hookimpl`` functions.
        name : str, optional
            Plugin name; pluggy derives one when omitted.

        Returns
        -------
        str
            The name the plugin was registered under.
        """
        plugin_name = name or self.plugin_manager.get_canonical_name(plugin)
        register_validated(self.plugin_manager, plugin, plugin_name)
        self.distributions.setdefault(plugin_name, "(registered at run time)")
        self._forget()
        return plugin_name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        self.plugin_manager.unregister(name=name)
        self._forget()

    def _forget(self) -> None:
        self._specs.clear()
        self._legacy.clear()

    def plugins(self) -> list[tuple[str, str]]:
        """Return ``(plugin name, providing package)`` for every plugin."""
        names = [name for name, _ in self.plugin_manager.list_name_plugin()]
        return [(name, self.distributions.get(name, "unknown")) for name in names]

    # -- components ------------------------------------------------------
    def specs(self, kind: str) -> dict[str, ComponentSpec]:
        """Return ``{name: spec}`` for one component kind, sorted by name.

        Raises
        ------
        DuplicateComponentError
            When two plugins use the same name; the message names both.
        """
        if kind not in KINDS:
            raise ValueError(f"Unknown component kind {kind!r}; expected one of {sorted(KINDS)}.")
        if kind not in self._specs:
            self._specs[kind] = self._collect(kind)
        return self._specs[kind]

    def _collect(self, kind: str) -> dict[str, ComponentSpec]:
        _, spec_cls = KINDS[kind]
        found: dict[str, ComponentSpec] = {}
        legacy: set[str] = set()
        for hook_name in (HOOKS[kind], DEPRECATED_HOOKS.get(kind)):
            if hook_name is None:  # a kind added after the first release has no deprecated name
                continue
            for plugin_name, specs in self._call_per_plugin(hook_name):
                for spec in specs:
                    if not isinstance(spec, spec_cls):
                        raise TypeError(
                            f"plugin {plugin_name!r} returned {spec!r} from {hook_name}(); "
                            f"expected {spec_cls.__name__} instances."
                        )
                    if spec.name in found:
                        raise DuplicateComponentError(
                            f"{kind} {spec.name!r} is registered twice: by plugin "
                            f"{found[spec.name].plugin!r} and by plugin {plugin_name!r}. "
                            f"Uninstall one of them or block one with "
                            f"SKLEARN_IMGCLS_BLOCK_PLUGINS={plugin_name}."
                        )
                    found[spec.name] = replace(spec, plugin=plugin_name)
                    if hook_name == DEPRECATED_HOOKS.get(kind):
                        legacy.add(spec.name)
        self._legacy[kind] = legacy
        return dict(sorted(found.items()))

    def _call_per_plugin(self, hook_name: str) -> list[tuple[str, list]]:
        """Call ``hook_name`` through pluggy once per contributing plugin, in registration order.

        Returns ``(plugin name, specs)`` pairs. Plugins that implement the
        hook only as wrappers stay in every call (so they wrap each
        contribution); every other plugin is left out of the others' calls.
        """
        pm = self.plugin_manager
        impls = getattr(pm.hook, hook_name).get_hookimpls()
        wrapper_only = {impl.plugin_name for impl in impls if impl.wrapper or impl.hookwrapper} - {
            impl.plugin_name for impl in impls if not (impl.wrapper or impl.hookwrapper)
        }
        contributors = {impl.plugin_name: impl.plugin for impl in impls if impl.plugin_name not in wrapper_only}
        results = []
        for name, plugin in pm.list_name_plugin():  # registration order: built-ins first
            if name not in contributors:
                continue
            others = [p for n, p in contributors.items() if n != name]
            returned = pm.subset_hook_caller(hook_name, remove_plugins=others)()
            specs = []
            for value in returned if isinstance(returned, (list, tuple)) else [returned]:
                if not isinstance(value, (list, tuple)):
                    raise TypeError(
                        f"plugin {name!r} returned {value!r} from {hook_name}() (after any hook wrappers); "
                        f"a hook returns a list of specs."
                    )
                specs.extend(value)
            results.append((name, specs))
        return results

    def from_deprecated_hook(self, kind: str, name: str) -> bool:
        """Whether the spec ``name`` came from a deprecated, unprefixed hook (a plugin written for 0.1).

        Such specs predate the declared fields (``soft_targets``,
        ``mixes_labels``, ``stage``, ...), so the estimators fall back to the
        first release's inference for them (see
        :mod:`sklearn_imgcls._core.components`).
        """
        self.get(kind, name)
        return name in self._legacy.get(kind, set())

    def deprecated_hook_users(self) -> list[tuple[str, str, str]]:
        """``(plugin name, deprecated hook, hook to rename it to)`` for every plugin still on the old names."""
        users = []
        for kind, old in DEPRECATED_HOOKS.items():
            for impl in getattr(self.plugin_manager.hook, old).get_hookimpls():
                users.append((impl.plugin_name, old, HOOKS[kind]))
        return users

    def names(self, kind: str, tag: str | None = None) -> list[str]:
        """Return the registered names of ``kind``, optionally those with ``tag``."""
        return [n for n, s in self.specs(kind).items() if tag is None or tag in s.tags]

    def get(self, kind: str, name: str) -> ComponentSpec:
        """Return the spec registered as ``name``.

        Raises
        ------
        UnknownComponentError
            Lists close matches and every available name.
        """
        specs = self.specs(kind)
        if isinstance(name, str) and name in specs:
            return specs[name]
        available = list(specs)
        close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownComponentError(
            f"Unknown {kind} {name!r}.{hint} Available {_plural(kind)}: {', '.join(available)}. "
            f"Plugins add more: see PLUGINS.md (the plugin author's guide) or the README's plugin section."
        )

    def build(self, kind: str, name: str, /, *args: Any, **params: Any) -> Any:
        """Build the component ``name`` of ``kind`` with ``build(*args, **params)``.

        Raises
        ------
        UnknownComponentError
            For a name no plugin registers.
        TypeError
            When ``params`` holds a parameter the component does not take.
        TypeError or ValueError
            When the builder fails on the values of ``params`` (the message
            names the component and the values, then the builder's own words).
        """
        spec = self.get(kind, name)
        try:
            inspect.signature(spec.build).bind(*args, **params)
        except TypeError as exc:
            raise TypeError(
                f"Cannot build {kind} {name!r} with parameters {sorted(params)}: {exc}. "
                f"Accepted: {inspect.signature(spec.build)}."
            ) from None
        if not params:
            return spec.build(*args)
        try:
            return spec.build(*args, **params)
        except (TypeError, ValueError) as exc:  # e.g. channels="abc" deep inside torch
            reason = str(exc).rstrip(".")  # a builder's own sentence: one full stop, not two
            raise type(exc)(
                f"Cannot build {kind} {name!r} with {params!r}: {type(exc).__name__}: {reason}. Check these values "
                f"against the builder's parameters {inspect.signature(spec.build)}."
            ) from exc


def _plural(kind: str) -> str:
    """``"loss"`` -> ``"losses"``, ``"backbone"`` -> ``"backbones"``."""
    return kind + ("es" if kind.endswith("s") else "s")


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    """Return the process-wide registry, discovering plugins on first call.

    Returns
    -------
    Registry
        Built-in plugins plus those installed through entry points, less the
        ones named in ``SKLEARN_IMGCLS_BLOCK_PLUGINS``.
    """
    return Registry(*make_plugin_manager())


def reset_registry() -> None:
    """Forget the process-wide registry; the next use rediscovers plugins."""
    get_registry.cache_clear()


class ComponentChain:
    """Registry components applied in sequence, built on first use, pickled by name.

    Estimators hand this to the training iterator instead of the built
    callables, so a fitted model pickles even when a plugin's augmentation is
    a closure, and unpickling rebuilds it from the registry. The chain keeps
    each component's spec, so the iterator reads what the spec declares
    (:meth:`mixes_labels`) instead of probing the built objects.

    Parameters
    ----------
    kind : str
        Component kind, e.g. ``"augmentation"``.
    items : list of (str, dict)
        Names and build parameters, applied in order.
    """

    def __init__(self, kind: str, items: list[tuple[str, dict]]) -> None:
        self.kind = kind
        self.items = [(name, dict(params)) for name, params in items]
        self._built: list[Any] | None = None
        self._specs: list[ComponentSpec] | None = None
        self._mixing: list[bool] | None = None

    def build(self) -> "ComponentChain":
        """Build every component now (raising for unknown names or parameters)."""
        registry = get_registry()
        self._specs = [registry.get(self.kind, name) for name, _ in self.items]
        self._built = [registry.build(self.kind, name, **params) for name, params in self.items]
        self._mixing = [
            bool(getattr(spec, "mixes_labels", False))
            # fallback for plugins on the deprecated hooks, which predate the declaration: the
            # first release read a ``mixes_labels`` attribute of the built augmentation
            or (registry.from_deprecated_hook(self.kind, spec.name) and getattr(built, "mixes_labels", False) is True)
            for spec, built in zip(self._specs, self._built)
        ]
        return self

    def components(self) -> list[Any]:
        """The built components, in order (building them on first use)."""
        if self._built is None:
            self.build()
        return list(self._built)

    def specs(self) -> list[ComponentSpec]:
        """The registry specs of the components, in order."""
        if self._specs is None:
            self.build()
        return list(self._specs)

    def mixes_labels(self) -> list[bool]:
        """For each component, whether it mixes labels (called with targets; see :class:`AugmentationSpec`)."""
        if self._mixing is None:
            self.build()
        return list(self._mixing)

    def __call__(self, data: Any, generator: Any) -> Any:
        """Apply each component in turn: ``data = component(data, generator)``."""
        if self._built is None:
            self.build()
        for component in self._built:
            data = component(data, generator)
        return data

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_built=None, _specs=None, _mixing=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"_specs": None, "_mixing": None, **state})  # chains pickled before specs were kept

    def __repr__(self) -> str:
        return f"ComponentChain({self.kind!r}, {self.items!r})"
