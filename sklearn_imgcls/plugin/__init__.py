"""The plugin contract: what a plugin author reads and imports.

A plugin is a module whose functions are decorated with :data:`hookimpl`
and return lists of specs (:mod:`.specs`); :mod:`.hookspecs` documents each
hook, :mod:`.discovery` finds plugins (built-ins and the ``sklearn_imgcls``
entry point group), :mod:`.registry` collects their specs and builds
components by name, and :mod:`.catalog` is the public listing and building
API (``list_backbones``, ``build_loss``, ...).

The names below are imported lazily, so importing this package does not
import torch::

    from sklearn_imgcls.plugin import hookimpl, BackboneSpec
"""

from __future__ import annotations

import importlib

_LAZY = {
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "AugmentationSpec": "specs",
    "BackboneSpec": "specs",
    "ComponentSpec": "specs",
    "CorruptionSpec": "specs",
    "LossSpec": "specs",
    "PretrainedWeights": "specs",
    "SamplerSpec": "specs",
    "get_registry": "registry",
    "check_severity": "severity",
    "graded_corruption": "severity",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
