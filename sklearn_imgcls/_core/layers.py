"""The layers a backbone declares (classifier, first conv, Grad-CAM target), found in a built network.

A :class:`~sklearn_imgcls.plugin.specs.BackboneSpec` names three layers by
dotted path: ``classifier``, ``first_conv`` and ``target_layer``. The names
refer to the module the spec's ``build`` or ``build_native`` returns, with
two additions that :func:`resolve_layer` understands:

* **negative indices**: a path component ``-1`` (``"classifier.-1"``) is the
  last child of an ``nn.Sequential`` / ``nn.ModuleList``, ``-2`` the one
  before it, and so on, so that a builder whose depth depends on its
  parameters can still declare one name;
* **wrappers**: a builder may return a module that wraps the network the
  names describe (e.g. one that resizes inputs first). Such a wrapper sets
  the attribute ``sklearn_imgcls_inner`` to the dotted name of the wrapped
  network; names not found in the wrapper are then looked up under it.

A spec that declares nothing for a field still works through the first
release's guesses (the last ``nn.Linear``; the first 4-D weight; the first
activation after the last ``Conv2d``), with an :class:`UndeclaredLayerWarning`
naming the field to set, once per backbone, field and process.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

__all__ = ["INNER_ATTRIBUTE", "UndeclaredLayerWarning", "declared_layer", "first_conv_channels", "has_layer",
           "resolve_layer"]

#: attribute of a wrapper module naming the wrapped network the declared names refer to
INNER_ATTRIBUTE = "sklearn_imgcls_inner"

#: what each spec field is for, in warnings
FIELDS = {
    "classifier": "the classification head transfer learning replaces",
    "first_conv": "the first convolution, which sees the image channels",
    "target_layer": "the layer Grad-CAM reads",
}
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.ELU)
_warned: set[tuple[str, str, str]] = set()


class UndeclaredLayerWarning(UserWarning):
    """A backbone spec declares no name for a layer the core needs: a guess is used instead."""


def _child(module: nn.Module, part: str) -> nn.Module | None:
    children = dict(module.named_children())
    if part in children:
        return children[part]
    if part.startswith("-") and part[1:].isdigit() and isinstance(module, (nn.Sequential, nn.ModuleList)):
        index = int(part)
        return module[index] if -len(module) <= index else None
    return None


def _walk(module: nn.Module, name: str) -> str | None:
    """The real dotted name of ``name`` (negative indices resolved) in ``module``, or None."""
    parts, current = [], module
    for part in name.split("."):
        child = _child(current, part)
        if child is None:
            return None
        parts.append(part if not part.startswith("-") else str(len(current) + int(part)))
        current = child
    return ".".join(parts)


def resolve_layer(module: nn.Module, name: str) -> str | None:
    """The dotted name in ``module`` of the declared layer ``name``, or None when it has none.

    Parameters
    ----------
    module : torch.nn.Module
        What a backbone's ``build`` or ``build_native`` returned.
    name : str
        A declared name (see the module docstring for negative indices and wrappers).

    Returns
    -------
    str or None
        A name ``module.get_submodule`` accepts.
    """
    if not name:
        return None
    found = _walk(module, name)
    inner = getattr(module, INNER_ATTRIBUTE, None)
    if found is None and isinstance(inner, str) and inner:
        under = _walk(module, f"{inner}.{name}")
        found = under
    return found


def has_layer(module: nn.Module, name: str) -> bool:
    """Whether ``module`` has a layer called ``name`` (declared-name syntax)."""
    return resolve_layer(module, name) is not None


def _guess(module: nn.Module, field: str) -> str | None:
    if field == "classifier":
        names = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
        return names[-1] if names else None
    if field == "first_conv":
        return next((n for n, m in module.named_modules() if isinstance(getattr(m, "weight", None), nn.Parameter)
                     and m.weight.ndim == 4), None)
    last_conv, after = None, None
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Conv2d):
            last_conv, after = name, None
        elif last_conv is not None and after is None and isinstance(layer, _ACTIVATIONS):
            after = name
    return after or last_conv


def _warn_once(spec: Any, backbone: str, field: str, guessed: str) -> None:
    key = (getattr(spec, "plugin", "") or "", backbone, field)
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"Backbone {backbone!r} declares no {field} ({FIELDS[field]}); guessing {guessed!r}. The plugin that "
        f"registers it should set BackboneSpec({field}=...) to the layer's dotted name.",
        UndeclaredLayerWarning,
        stacklevel=3,
    )


def declared_layer(spec: Any, module: nn.Module, field: str, backbone: str | None = None) -> str:
    """The dotted name in ``module`` of the layer ``spec`` declares in ``field``.

    Parameters
    ----------
    spec : BackboneSpec or None
        The backbone's spec (None: a backbone no plugin registers any more).
    module : torch.nn.Module
        The built network (what ``build`` or ``build_native`` returned).
    field : {"classifier", "first_conv", "target_layer"}
        Which declared layer.
    backbone : str or None
        Backbone name for messages (defaults to ``spec.name``).

    Returns
    -------
    str
        A name ``module.get_submodule`` accepts.

    Raises
    ------
    ValueError
        When the declared name is not in the network (naming the spec field
        and some of the network's layers), or nothing can be guessed.
    """
    backbone = backbone or getattr(spec, "name", None) or type(module).__name__
    declared = getattr(spec, field, None) if spec is not None else None
    if declared:
        found = resolve_layer(module, declared)
        if found is None:
            names = [n for n, _ in module.named_modules() if n][:25]
            raise ValueError(
                f"Backbone {backbone!r} declares {field}={declared!r}, but the network has no such layer; some of "
                f"its layers: {', '.join(names)}. Fix BackboneSpec({field}=...) in the plugin that registers it "
                f"({getattr(spec, 'plugin', '') or 'unknown'!r})."
            )
        return found
    guessed = _guess(module, field)
    if guessed is None:
        raise ValueError(
            f"Backbone {backbone!r} declares no {field} and its network ({type(module).__name__}) has no layer to "
            f"guess it from; set BackboneSpec({field}=...) to the layer's dotted name."
        )
    _warn_once(spec, backbone, field, guessed)
    return guessed


def first_conv_channels(weights: nn.Module | dict, spec: Any = None) -> int | None:
    """Input channels of a network's first convolution, or None when it cannot be told.

    Parameters
    ----------
    weights : torch.nn.Module or dict
        A built network, or a state dict of one.
    spec : BackboneSpec or None
        Its backbone's spec: its ``first_conv`` names the layer (in a state
        dict: the key ``<first_conv>.weight``, also under a wrapper's prefix,
        i.e. a key ending in ``.<first_conv>.weight``). Without a declared
        name the first 4-D weight is taken (with a warning when ``spec`` is
        given).
    """
    declared = getattr(spec, "first_conv", None) if spec is not None else None
    if isinstance(weights, nn.Module):
        if declared is None and spec is None:
            name = _guess(weights, "first_conv")
        else:
            name = declared_layer(spec, weights, "first_conv")
        return int(weights.get_submodule(name).weight.shape[1]) if name is not None else None
    if declared is not None and "-" not in declared:
        key = f"{declared}.weight"
        value = weights.get(key)
        if value is None:
            value = next((v for k, v in weights.items() if k.endswith(f".{key}")), None)
        return int(value.shape[1]) if value is not None and value.ndim == 4 else None
    for key, value in weights.items():
        if key.endswith("weight") and value.ndim == 4:
            if spec is not None and declared is None:
                _warn_once(spec, spec.name, "first_conv", key[: -len(".weight")])
            return int(value.shape[1])
    return None
