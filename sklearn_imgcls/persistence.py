"""Saving fitted classifiers without pickle: weights as safetensors, everything else as JSON.

``save(estimator, "model.safetensors")`` writes one safetensors file
atomically: the network's tensors, and in its header metadata the estimator
class, its parameters, ``classes_`` (and, for a multi-label model, ``multilabel``), the training history and a recipe of the
network's architecture. :func:`load` rebuilds the architecture from that
recipe (no pretrained weights file is needed), loads the tensors and returns a
fitted estimator.

Nothing in the file is executed on load: the estimator class comes from an
allow-list, parameters are JSON values (names resolve through the registry,
never by import). :func:`load` checks the whole file first: each field, the
parameters (as ``fit`` does), classes against the network's outputs, the
image shape against its input, each tensor's name, shape and dtype against
the architecture (built on the ``meta`` device first, so a tampered recipe
allocates nothing), and a SHA-256 checksum of the metadata and of the loaded
network's tensors against the one recorded (damage that leaves a plausible
file, a changed label or weight). Any problem is one ``ValueError`` naming
file and field.

Persistence knows no estimator's internals: each estimator describes the
network it trains through its ``__sklearn_imgcls_recipe__`` and sets its own
fitted attributes in ``__sklearn_imgcls_restore__`` (see
:mod:`sklearn_imgcls._core.recipe`). Which classes a file may name is fixed
here, never read from the file.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._core.model_fields import (MAX_IMAGE_VALUES, FieldError, check_classes, check_history, check_image_shape_field,
                                 check_multilabel, check_tensors, checksum, decode, encode, is_count, is_size,
                                 plain_history, read_field)
from ._core.recipe import RECIPE_KEYS

__all__ = ["FORMAT", "load", "save"]

FORMAT = "sklearn-imgcls-model/1"
#: the only classes a model file may name (a file never chooses what is imported)
_ALLOWED = {"CNNClassifier": "sklearn_imgcls.cnn", "TransferClassifier": "sklearn_imgcls.transfer"}
_UNSAVEABLE = ("callbacks", "accelerator")
_FIELDS = ("format", "estimator", "params", "classes", "image_shape", "frozen_parameters", "history", "architecture",
           "checksum", "multilabel")
#: fields absent from files written before they were added (multilabel: absent means False)
_OPTIONAL = ("checksum", "multilabel")


def _rebuild(recipe: dict) -> torch.nn.Module:
    """The network a recipe describes, with neutral input statistics (the file's tensors replace them)."""
    from ._core.network import ImageNetwork
    from ._core.pretrained import build_from_recipe

    model = build_from_recipe(recipe)
    channels = recipe["network_in_channels"] or recipe["build_channels"]
    size = recipe["network_input_size"]
    return ImageNetwork(model, torch.zeros(channels), torch.ones(channels), in_channels=recipe["network_in_channels"],
                        input_size=tuple(size) if size is not None else None)


def save(estimator: Any, path: str | os.PathLike) -> str:
    """Write a fitted :class:`~sklearn_imgcls.CNNClassifier` or :class:`~sklearn_imgcls.TransferClassifier` to ``path``.

    The file is written atomically (:func:`sklearn_imgcls._core.atomic.atomic_path`):
    a failed or interrupted save leaves an existing file at ``path`` as it was.

    Parameters
    ----------
    estimator : CNNClassifier or TransferClassifier
        A fitted estimator. Parameters that are live Python objects
        (``callbacks``, ``accelerator``) cannot be stored: set them to None first.
    path : str or path-like
        The file to write (conventionally ``*.safetensors``).

    Returns
    -------
    str
        ``path``.
    """
    from safetensors.torch import save_model

    from ._core.atomic import atomic_path

    check_is_fitted(estimator)
    name = type(estimator).__name__
    if name not in _ALLOWED:
        raise TypeError(f"save() stores CNNClassifier and TransferClassifier, not {name}.")
    params = {key: value.tolist() if isinstance(value, np.ndarray) else value  # e.g. a per-label threshold
              for key, value in estimator.get_params(deep=False).items()}
    for key in _UNSAVEABLE:
        if params.get(key) is not None:
            raise ValueError(f"{key}= holds Python objects that cannot be saved safely; "
                             f"call set_params({key}=None) before saving (or pickle with joblib).")
    try:
        encoded_params = json.dumps(encode(params))
    except TypeError as exc:
        raise ValueError(f"A parameter cannot be saved as JSON: {exc}.") from None
    classes = estimator.classes_
    metadata = {
        "format": FORMAT,
        "estimator": name,
        "params": encoded_params,
        "classes": json.dumps({"values": encode(classes.tolist()), "dtype": classes.dtype.str
                               if classes.dtype != object else "object"}),
        "image_shape": json.dumps([int(v) for v in estimator.image_shape_]),
        "frozen_parameters": json.dumps(list(getattr(estimator, "frozen_parameters_", []))),
        "history": json.dumps(encode(plain_history(estimator.history_))),
        "architecture": json.dumps(encode(estimator.__sklearn_imgcls_recipe__().architecture)),
    }
    if getattr(estimator, "multilabel_", False):  # multi-class files stay as before
        metadata["multilabel"] = json.dumps(True)
    module = estimator.net_.module_
    metadata["checksum"] = checksum(metadata, module)
    channels_last = getattr(module, "channels_last", False)
    path = os.fspath(path)
    module.backbone.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors
    try:
        with atomic_path(path) as temporary:
            save_model(module, temporary, metadata=metadata)
    finally:
        if channels_last:
            module.backbone.to(memory_format=torch.channels_last)
    return path


def _check_params(cls: type, params: Any, image_shape: tuple) -> tuple[Any, Any]:
    """``cls(**params)`` and its :class:`~sklearn_imgcls._core.recipe.ModelRecipe` for ``image_shape``.

    The parameters are checked as ``fit`` checks them (with ``device="cpu"``:
    the devices of the loading machine do not matter here).
    """
    from ._core.data import check_image_shape

    if not isinstance(params, dict):
        raise FieldError("params", f"a JSON object of parameters is needed, not {type(params).__name__}")
    unknown = sorted(str(k) for k in set(params) - set(cls().get_params(deep=False)))
    if unknown:
        raise FieldError("params", f"{cls.__name__} takes no parameters {unknown}")
    for key in _UNSAVEABLE:
        if params.get(key) is not None:
            raise FieldError("params", f"{key}={params[key]!r} cannot come from a file")
    estimator = cls(**params)  # a parameter missing (a file of an older version) takes its default
    probe = cls(**{**params, "device": "cpu"})  # the devices of the loading machine do not matter here
    try:
        recipe = probe.__sklearn_imgcls_recipe__(image_shape)  # checks the parameters as fit does
        check_random_state(probe.random_state)
        if estimator.device != "auto":
            torch.device(estimator.device)
        shape = check_image_shape(probe.image_shape)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise FieldError("params", " ".join(str(exc).split()).rstrip(".")) from None
    if shape is not None and shape != image_shape:
        raise FieldError("image_shape", f"{list(image_shape)} differs from the parameter "
                                        f"image_shape={probe.image_shape!r}")
    return estimator, recipe


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists, so that a recipe read from JSON compares with one built in Python."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check_recipe(recipe: Any, fixed: dict, n_classes: int, image_shape: tuple) -> dict:
    """The file's architecture recipe, checked for sound values and against what the parameters ``fixed``."""
    if not isinstance(recipe, dict) or set(recipe) != RECIPE_KEYS:
        raise FieldError("architecture", f"a JSON object with the keys {sorted(RECIPE_KEYS)} is needed")
    fine = {
        "num_outputs": recipe["num_outputs"] == n_classes,
        "source": recipe["source"] in ("registry", "native", "torchvision"),
        "backbone": isinstance(recipe["backbone"], str),
        "backbone_params": isinstance(recipe["backbone_params"], dict),
        "network_in_channels": recipe["network_in_channels"] is None or is_count(recipe["network_in_channels"]),
        "network_input_size": recipe["network_input_size"] is None or is_size(recipe["network_input_size"]),
        "build_size": is_size(recipe["build_size"]) and max(recipe["build_size"]) <= MAX_IMAGE_VALUES,
        "build_channels": is_count(recipe["build_channels"]) and recipe["build_channels"] <= MAX_IMAGE_VALUES,
        "replace_head": isinstance(recipe["replace_head"], bool),
    }
    for key, value in fixed.items():  # e.g. a network trained from scratch is built for exactly these images
        fine[key] = fine[key] and _plain(recipe[key]) == _plain(value)
    wrong = [key for key, ok in fine.items() if not ok]
    if wrong:
        raise FieldError("architecture", f"{wrong[0]}={recipe[wrong[0]]!r} does not fit the {n_classes} classes, "
                                          f"the parameters and image_shape {list(image_shape)}")
    return recipe


def _build_checked(recipe: dict, tensors: dict, frozen: Any, image_shape: tuple, n_classes: int) -> torch.nn.Module:
    """The recorded network holding ``tensors``, checked on the meta device before it is built."""
    try:
        try:
            with torch.device("meta"):
                skeleton = _rebuild(recipe)
        except (RuntimeError, NotImplementedError):  # a plugin builder that needs real tensors
            skeleton = _rebuild(recipe)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise FieldError("architecture", f"cannot be built: {' '.join(str(exc).split())[:300]}") from None
    check_tensors(skeleton, tensors)
    names = dict(skeleton.backbone.named_parameters())
    if not isinstance(frozen, list) or not all(isinstance(n, str) and n in names for n in frozen):
        raise FieldError("frozen_parameters", "a list of parameter names of the network's backbone is needed")
    module = _rebuild(recipe)
    module.load_state_dict(tensors, strict=False)  # names and shapes checked: only tied duplicates are absent
    module.eval()
    try:
        with torch.inference_mode():
            outputs = module(torch.zeros(1, *image_shape)).shape
    except (RuntimeError, ValueError, IndexError) as exc:
        raise FieldError("image_shape", f"{list(image_shape)} does not fit the network "
                                         f"({str(exc).splitlines()[0][:200]})") from None
    if tuple(outputs) != (1, n_classes):
        raise FieldError("architecture", f"the network gives {list(outputs)[1:]} outputs for {n_classes} classes")
    return module


def _read(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file (on the CPU)."""
    from safetensors import safe_open

    from ._core.file_formats import detect_format

    kind = detect_format(path)  # missing, a folder, empty, truncated, an image, text: a ValueError naming it
    if kind != "safetensors":
        raise ValueError(f"{path!r} is a {kind} file, not a model written by sklearn_imgcls.save; load() never "
                         "unpickles (that runs code from the file): use joblib.load only for files you trust.")
    try:
        with safe_open(path, framework="pt") as handle:
            return handle.metadata() or {}, {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for damaged files
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(f"{path!r} is not a valid safetensors model file ({reason}); save the model again.") from None


def load(path: str | os.PathLike, device: str = "cpu"):
    """Load a model written by :func:`save`, checking the whole file first.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save` / ``estimator.save``.
    device : str, default="cpu"
        Where the network is placed (``"auto"``: CUDA when available).

    Returns
    -------
    CNNClassifier or TransferClassifier
        The fitted estimator.

    Raises
    ------
    ValueError
        One line naming ``path`` and the field at fault, for any file that is
        not an intact model written by :func:`save`.
    """
    from ._core import params as P
    from ._core.net_factory import inference_net

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {type(path).__name__}.")
    path, device = os.fspath(path), P.check_device(device)
    metadata, tensors = _read(path)
    if metadata.get("format") != FORMAT:
        from ._core.weights import RECIPE_KEY

        if RECIPE_KEY in metadata:
            raise ValueError(f"{path!r} holds network weights written by save_weights(), not a whole model: use it as "
                             f"TransferClassifier(backbone=..., weights={path!r}) or BackboneFeatures(..., weights=...); "
                             f"load() reads files written by estimator.save().")
        raise ValueError(f"{path!r} was not written by sklearn_imgcls.save (format {metadata.get('format')!r}); "
                         f"load() reads files of format {FORMAT!r}.")
    name = metadata.get("estimator")
    if name not in _ALLOWED:
        raise ValueError(f"{path!r} names estimator {name!r}, which load() does not create "
                         f"(it creates {', '.join(_ALLOWED)}).")
    _check_backbone_installed(path, metadata)
    try:
        missing = [key for key in _FIELDS if key not in metadata and key not in _OPTIONAL]
        extra = sorted(set(metadata) - set(_FIELDS))
        if missing or extra:
            raise FieldError((missing + extra)[0], "missing" if missing else "not a field of this format")
        image_shape = check_image_shape_field(read_field(metadata, "image_shape"))
        estimator, expected = _check_params(getattr(importlib.import_module(_ALLOWED[name]), name),
                                            read_field(metadata, "params"), image_shape)
        multilabel = check_multilabel(read_field(metadata, "multilabel")) if "multilabel" in metadata else False
        classes = check_classes(read_field(metadata, "classes"), multilabel)
        recipe = _check_recipe(read_field(metadata, "architecture"), expected.fixed, len(classes), image_shape)
        history = check_history(read_field(metadata, "history"))
        frozen = read_field(metadata, "frozen_parameters")
        if not expected.freezes and frozen != []:
            raise FieldError("frozen_parameters", f"a {name} freezes nothing: [] is needed")
        module = _build_checked(recipe, tensors, frozen, image_shape, len(classes))
        if "checksum" in metadata and metadata["checksum"] != checksum(metadata, module):
            raise FieldError("checksum", "the labels, parameters or tensors differ from those saved")
    except FieldError as exc:
        raise ValueError(f"{path!r} is not an intact sklearn_imgcls model (field {exc.args[0]!r}: {exc.args[1]}); "
                         "the file is damaged or was altered, save the model again.") from None
    module.to(device).set_compute(estimator.precision, estimator.channels_last, estimator.compile)
    net = inference_net(module, len(classes), device, history, multilabel=multilabel)
    return estimator.__sklearn_imgcls_restore__(net, classes, image_shape, frozen)


def _check_backbone_installed(path: str, metadata: dict) -> None:
    """Refuse, with what to install, a model whose backbone no loaded plugin registers (the file is fine)."""
    from .plugin.registry import get_registry

    try:
        backbone = read_field(metadata, "architecture").get("backbone")
    except (FieldError, AttributeError):
        return  # a damaged field: the checks that follow name it
    if isinstance(backbone, str) and backbone not in get_registry().names("backbone"):
        raise ValueError(
            f"{path!r} holds a model with backbone {backbone!r} (field 'architecture'), which no loaded plugin "
            f"registers: install or "
            f"enable the plugin that provides it (some need configuring, see the plugin's README; "
            f"'sklearn-imgcls plugins' lists what is loaded, SKLEARN_IMGCLS_BLOCK_PLUGINS may be hiding it), "
            f"then load the file again."
        )
