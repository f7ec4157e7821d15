"""The component registry: list, look up and build components by name.

One :class:`Registry` collects the specs every plugin returns from its hooks,
refuses duplicate names (naming both plugins) and answers unknown names with
the close matches and the full list of what is available.

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
from .specs import AugmentationSpec, BackboneSpec, ComponentSpec, LossSpec, SamplerSpec

__all__ = [
    "DuplicateComponentError",
    "KINDS",
    "Registry",
    "UnknownComponentError",
    "get_registry",
    "reset_registry",
]

#: component kind -> (hook name, spec class)
KINDS: dict[str, tuple[str, type[ComponentSpec]]] = {
    "backbone": ("register_backbones", BackboneSpec),
    "loss": ("register_losses", LossSpec),
    "augmentation": ("register_augmentations", AugmentationSpec),
    "sampler": ("register_samplers", SamplerSpec),
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
        self._specs.clear()
        return plugin_name

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        self.plugin_manager.unregister(name=name)
        self._specs.clear()

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
        hook_name, spec_cls = KINDS[kind]
        hook = getattr(self.plugin_manager.hook, hook_name)
        found: dict[str, ComponentSpec] = {}
        # Call plugins one by one (pluggy would merge their lists) so each spec
        # keeps the name of the plugin that provided it.
        for impl in hook.get_hookimpls():  # registration order: built-ins first
            for spec in impl.function() or []:
                if not isinstance(spec, spec_cls):
                    raise TypeError(
                        f"plugin {impl.plugin_name!r} returned {spec!r} from {hook_name}(); "
                        f"expected {spec_cls.__name__} instances."
                    )
                if spec.name in found:
                    raise DuplicateComponentError(
                        f"{kind} {spec.name!r} is registered twice: by plugin "
                        f"{found[spec.name].plugin!r} and by plugin {impl.plugin_name!r}. "
                        f"Uninstall one of them or block one with "
                        f"SKLEARN_IMGCLS_BLOCK_PLUGINS={impl.plugin_name}."
                    )
                found[spec.name] = replace(spec, plugin=impl.plugin_name)
        return dict(sorted(found.items()))

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
            f"Plugins add more: see the README's plugin section."
        )

    def build(self, kind: str, name: str, /, *args: Any, **params: Any) -> Any:
        """Build the component ``name`` of ``kind`` with ``build(*args, **params)``.

        Raises
        ------
        UnknownComponentError
            For a name no plugin registers.
        TypeError
            When ``params`` holds a parameter the component does not take.
        """
        spec = self.get(kind, name)
        try:
            inspect.signature(spec.build).bind(*args, **params)
        except TypeError as exc:
            raise TypeError(
                f"Cannot build {kind} {name!r} with parameters {sorted(params)}: {exc}. "
                f"Accepted: {inspect.signature(spec.build)}."
            ) from None
        return spec.build(*args, **params)


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
    a closure, and unpickling rebuilds it from the registry.

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

    def build(self) -> "ComponentChain":
        """Build every component now (raising for unknown names or parameters)."""
        registry = get_registry()
        self._built = [registry.build(self.kind, name, **params) for name, params in self.items]
        return self

    def components(self) -> list[Any]:
        """The built components, in order (building them on first use)."""
        if self._built is None:
            self.build()
        return list(self._built)

    def __call__(self, data: Any, generator: Any) -> Any:
        """Apply each component in turn: ``data = component(data, generator)``."""
        if self._built is None:
            self.build()
        for component in self._built:
            data = component(data, generator)
        return data

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_built"] = None
        return state

    def __repr__(self) -> str:
        return f"ComponentChain({self.kind!r}, {self.items!r})"
