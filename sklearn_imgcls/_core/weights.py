"""Pretrained weights: the ones a backbone declares, and local checkpoint files.

Two sources, one entry point (:func:`load_weights`):

* a weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...) that the backbone's
  spec declares (``BackboneSpec.weights``, a tuple of
  :class:`~sklearn_imgcls.plugin.specs.PretrainedWeights`): its ``load()``
  gives the native architecture's state dict, and the declaration the input
  size and the normalisation mean and std. The built-in torchvision plugin
  declares torchvision's weights, read from the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``) or downloaded there;
* a local file: ``.pt``/``.pth`` loaded with ``torch.load(weights_only=True)``
  (no code runs on load), or ``.safetensors``.

When weights are neither cached nor downloadable, ``load`` raises ``OSError``
saying which file to put where (re-raised as :class:`WeightsUnavailableError`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["LoadedWeights", "WeightsError", "WeightsUnavailableError", "hub_checkpoint_path", "is_checkpoint_path",
           "load_named", "load_weights", "read_checkpoint", "save_weights", "select_weights", "weights_cached"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")


class WeightsError(ValueError):
    """Weights that cannot be found, read or matched to the architecture."""


@dataclass
class LoadedWeights:
    """A state dict plus what the weights say about their inputs.

    Attributes
    ----------
    state_dict : dict of str to torch.Tensor
        Parameters of the backbone (keys without the ``backbone.`` prefix).
    source : str
        Where they came from, for messages.
    input_size : tuple of int or None
        ``(H, W)`` the weights were trained at (torchvision's crop size).
    mean, std : tuple of float or None
        Normalisation the weights were trained with.
    recipe : dict or None
        How the network was built, as recorded by :func:`save_weights`
        (backbone name, input channels, build size, builder parameters,
        outputs); None for checkpoints written by other tools.
    legacy : bool
        A file written by :func:`save_weights` before it recorded the recipe
        (its keys carry the ``backbone.`` prefix of the estimators' network).
    """

    state_dict: dict
    source: str
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    recipe: dict | None = None
    legacy: bool = False


def is_checkpoint_path(weights: str) -> bool:
    """Whether ``weights`` names a local file rather than a declared weights name."""
    return weights.lower().endswith(CHECKPOINT_SUFFIXES) or os.sep in weights or os.path.exists(weights)


def hub_checkpoint_path(url: str, file_name: str | None = None) -> str:
    """Path torch hub caches the file of ``url`` under (honours ``TORCH_HOME``).

    ``file_name`` replaces the URL's last path component, as in
    ``torch.hub.load_state_dict_from_url``.
    """
    from urllib.parse import urlparse

    return os.path.join(torch.hub.get_dir(), "checkpoints", file_name or os.path.basename(urlparse(url).path))


class WeightsUnavailableError(WeightsError, OSError):
    """Named pretrained weights whose file is missing and cannot be fetched (an ``OSError`` too)."""


def select_weights(spec: Any, name: str) -> Any:
    """The :class:`~sklearn_imgcls.plugin.specs.PretrainedWeights` of ``spec`` called ``name``.

    ``"DEFAULT"`` (any case) picks ``spec.default_weights()``.

    Raises
    ------
    WeightsError
        When the backbone offers no weights, or none called ``name`` (the
        message lists those it offers).
    """
    if not spec.weights:
        raise WeightsError(
            f"Backbone {spec.name!r} has no pretrained weights to name; pass weights=None or a checkpoint path."
        )
    if name.upper() == "DEFAULT":
        return spec.default_weights()
    chosen = next((w for w in spec.weights if w.name == name), None)
    if chosen is None:
        raise WeightsError(
            f"Unknown weights {name!r} for {spec.name}. Available: 'DEFAULT', "
            f"{', '.join(repr(w.name) for w in spec.weights)}; or pass a checkpoint path (.pth, .pt, .safetensors)."
        )
    return chosen


def load_named(spec: Any, name: str) -> LoadedWeights:
    """Call the ``load`` of ``spec``'s weights ``name`` and check it returned a state dict.

    Raises
    ------
    WeightsUnavailableError
        When ``load`` raises ``OSError`` (file missing, not downloadable); its
        message is kept, prefixed with the backbone and weights names.
    WeightsError
        When ``load`` returns something other than a dict of tensors.
    """
    chosen = select_weights(spec, name)
    source = f"{spec.name}/{chosen.name}"
    try:
        state_dict = chosen.load()
    except WeightsError:
        raise
    except OSError as exc:
        raise WeightsUnavailableError(f"{source}: {exc}") from exc
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise WeightsError(
            f"The load() of weights {source} (plugin {spec.plugin or '?'}) returned {type(state_dict).__name__}, "
            f"not a state dict of tensors; PretrainedWeights.load must return the native architecture's state dict."
        )
    return LoadedWeights(state_dict, f"weights {source}", input_size=tuple(chosen.input_size),
                         mean=tuple(chosen.mean), std=tuple(chosen.std))


#: key of the build recipe: in safetensors metadata, or a JSON string entry of a torch.save state dict
RECIPE_KEY = "sklearn_imgcls_recipe"


def _read_recipe(text: str | None, path: str) -> dict | None:
    if text is None:
        return None
    try:
        recipe = json.loads(text)
    except (TypeError, ValueError):
        recipe = None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("backbone"), str):
        raise WeightsError(f"Checkpoint {path!r} has a damaged {RECIPE_KEY!r} entry; save the weights again.")
    return recipe


def read_checkpoint(path: str) -> tuple[dict, str | None]:
    """The state dict in ``path`` and the recipe text it carries (or None), read safely.

    ``.safetensors`` files are read with safetensors; others with
    ``torch.load(weights_only=True)`` (no code runs). A dict nested under
    ``state_dict``, ``model`` or ``module`` is unwrapped.

    Raises
    ------
    WeightsError
        When the file cannot be read safely or holds no state dict of tensors.
    """
    recipe_text = None
    try:
        if path.lower().endswith(".safetensors"):
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(path, framework="pt") as handle:
                recipe_text = (handle.metadata() or {}).get(RECIPE_KEY)
            state_dict = load_file(path, device="cpu")
        else:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state_dict, dict) and isinstance(state_dict.get(RECIPE_KEY), str):
                recipe_text = state_dict.pop(RECIPE_KEY)
    except Exception as exc:  # unpickling refusals, corrupt files, wrong formats
        import pickle

        if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
            # torch's own text goes on to suggest weights_only=False, i.e. running the file's code: not shown
            reason = "it holds pickled Python objects besides tensors, which are never loaded"
        else:
            reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        raise WeightsError(
            f"Cannot load checkpoint {path!r} safely ({reason}). Only tensors are loaded (weights_only=True); "
            f"save a plain state dict with torch.save or safetensors."
        ) from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state_dict, dict) and isinstance(state_dict.get(key), dict):
            state_dict = state_dict[key]
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise WeightsError(f"Checkpoint {path!r} does not hold a state dict of tensors.")
    return state_dict, recipe_text


def _load_file(path: str) -> LoadedWeights:
    if not os.path.isfile(path):
        raise WeightsError(f"Checkpoint file not found: {path!r}.")
    state_dict, recipe_text = read_checkpoint(path)
    recipe = _read_recipe(recipe_text, path)
    ours = any(k.startswith("backbone.") for k in state_dict)  # the estimators' network: backbone + normalisation
    mean = state_dict.pop("mean", None) if ours or recipe else None
    std = state_dict.pop("std", None) if ours or recipe else None
    prefix = "backbone."
    if ours:
        state_dict = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    return LoadedWeights(
        state_dict,
        f"checkpoint {path}",
        mean=tuple(mean.flatten().tolist()) if mean is not None else None,
        std=tuple(std.flatten().tolist()) if std is not None else None,
        recipe=recipe,
        legacy=ours and recipe is None,
    )


def load_weights(arch: str, weights: str) -> LoadedWeights:
    """Load ``weights`` for the architecture ``arch``.

    Parameters
    ----------
    arch : str
        Registry backbone name.
    weights : str
        A weights name the backbone declares or a checkpoint path (see module docstring).
        Checkpoints saved by :func:`save_weights` carry the normalisation too.

    Returns
    -------
    LoadedWeights

    Raises
    ------
    WeightsError
        Saying what was missing or wrong and where to put the file.
    """
    if is_checkpoint_path(weights):
        return _load_file(weights)
    from ..plugin.registry import get_registry

    return load_named(get_registry().get("backbone", arch), weights)


def save_weights(module: torch.nn.Module, path: str, recipe: dict | None = None) -> None:
    """Save a fitted estimator's network (backbone + normalisation) for transfer.

    The file is written atomically: a failed or interrupted save leaves any
    earlier file at ``path`` intact and no partial file behind.

    Parameters
    ----------
    module : torch.nn.Module
        Usually ``estimator.net_.module_``.
    path : str
        ``.safetensors`` writes safetensors; anything else ``torch.save``.
    recipe : dict or None
        How the backbone was built (see :class:`LoadedWeights`), stored in the
        file so that loading rebuilds that very variant (a small-image stem,
        a channel count) instead of guessing it. Defaults to ``module.recipe``.

    Raises
    ------
    OSError
        Naming ``path`` when the file cannot be written (full disk, no permission).
    """
    from .atomic import atomic_path

    recipe = recipe if recipe is not None else getattr(module, "recipe", None)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    text = json.dumps(recipe) if recipe is not None else None
    with atomic_path(path) as temporary:
        if path.lower().endswith(".safetensors"):
            from safetensors.torch import save_file

            save_file(state, temporary, metadata={RECIPE_KEY: text} if text is not None else None)
        else:
            torch.save({**state, RECIPE_KEY: text} if text is not None else state, temporary)


def weights_cached(arch: str, name: str = "DEFAULT") -> bool:
    """Whether the backbone ``arch``'s weights ``name`` are on disk (loading needs no download).

    True when the weights' ``load`` says so through an ``available()`` method
    (the loaders of :mod:`sklearn_imgcls.plugin.sources` have one); loaders
    that cannot tell count as not cached.
    """
    from ..plugin.registry import get_registry

    try:
        chosen = select_weights(get_registry().get("backbone", arch), name)
    except (WeightsError, ValueError):
        return False
    available = getattr(chosen.load, "available", None)
    return bool(available()) if callable(available) else False

