"""Pretrained weights: torchvision's weights API and local checkpoint files.

Two sources, one entry point (:func:`load_weights`):

* a torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...) for a
  torchvision architecture: looked up with ``torchvision.models.get_model_weights``,
  read from the hub cache (``$TORCH_HOME/hub/checkpoints``, where torchvision
  keeps its downloads) or downloaded there; its metadata gives the input size
  and the normalisation mean and std;
* a local file: ``.pt``/``.pth`` loaded with ``torch.load(weights_only=True)``
  (no code runs on load), or ``.safetensors``.

When weights are neither cached nor downloadable, the error says which file
to put where, or to pass a local path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

__all__ = ["LoadedWeights", "WeightsError", "hub_checkpoint_path", "is_checkpoint_path", "load_weights", "save_weights",
           "torchvision_defaults"]

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
    """Whether ``weights`` names a local file rather than a torchvision weights name."""
    return weights.lower().endswith(CHECKPOINT_SUFFIXES) or os.sep in weights or os.path.exists(weights)


def hub_checkpoint_path(url: str) -> str:
    """Path torchvision caches the file of ``url`` under (honours ``TORCH_HOME``)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def _torchvision_weights(arch: str, name: str):
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(arch)
    except (KeyError, ValueError):
        raise WeightsError(
            f"Backbone {arch!r} has no torchvision weights; pass weights=None or a checkpoint path."
        ) from None
    if name.upper() == "DEFAULT":
        return enum.DEFAULT
    available = [w.name for w in enum]
    if name not in available:
        raise WeightsError(
            f"Unknown weights {name!r} for {arch}. Available: 'DEFAULT', "
            f"{', '.join(repr(a) for a in available)}; or pass a checkpoint path (.pth, .pt, .safetensors)."
        )
    return enum[name]


def _weights_metadata(weights) -> tuple[tuple[int, int] | None, tuple | None, tuple | None]:
    """Input size and normalisation mean/std of a torchvision weights enum member (from its transforms)."""
    preset = weights.transforms()
    crop = getattr(preset, "crop_size", None)
    size = tuple(crop) if crop is not None else None
    if size is not None and len(size) == 1:
        size = (size[0], size[0])
    return size, tuple(getattr(preset, "mean", ())) or None, tuple(getattr(preset, "std", ())) or None


def torchvision_defaults(arch: str) -> LoadedWeights:
    """Input size, mean and std of torchvision's DEFAULT weights for ``arch``, with no tensors (nothing is read)."""
    size, mean, std = _weights_metadata(_torchvision_weights(arch, "DEFAULT"))
    return LoadedWeights({}, f"torchvision {arch} defaults", input_size=size, mean=mean, std=std)


def _load_torchvision(arch: str, name: str) -> LoadedWeights:
    weights = _torchvision_weights(arch, name)
    path = hub_checkpoint_path(weights.url)
    if os.path.isfile(path):
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    else:
        try:
            state_dict = torch.hub.load_state_dict_from_url(
                weights.url, map_location="cpu", progress=False, check_hash=True, weights_only=True
            )
        except Exception as exc:  # network errors come in many types
            raise WeightsError(
                f"Pretrained weights {arch}/{weights.name} are not cached and could not be downloaded "
                f"({type(exc).__name__}: {exc}). Download {weights.url} on a connected machine and "
                f"put it at {path} (the cache follows TORCH_HOME), or pass the file's path as weights=."
            ) from None
    size, mean, std = _weights_metadata(weights)
    return LoadedWeights(state_dict, f"torchvision {arch}/{weights.name}", input_size=size, mean=mean, std=std)


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


def _load_file(path: str) -> LoadedWeights:
    if not os.path.isfile(path):
        raise WeightsError(f"Checkpoint file not found: {path!r}.")
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
        A torchvision weights name or a checkpoint path (see module docstring).
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
    return _load_torchvision(arch, weights)


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


def torchvision_weights_cached(arch: str, name: str = "DEFAULT") -> bool:
    """Whether torchvision's ``name`` weights for ``arch`` are on disk (no download needed)."""
    try:
        return os.path.isfile(hub_checkpoint_path(_torchvision_weights(arch, name).url))
    except WeightsError:
        return False
