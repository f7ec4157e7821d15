"""Saving fitted classifiers without pickle: weights as safetensors, everything else as JSON.

``save(estimator, "model.safetensors")`` writes one safetensors file
atomically: the network's tensors, and in its header metadata the estimator
class, its parameters, ``classes_``, the training history and a recipe of the
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
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = ["FORMAT", "load", "save"]

FORMAT = "sklearn-imgcls-model/1"
_ALLOWED = {"CNNClassifier": "sklearn_imgcls.cnn", "TransferClassifier": "sklearn_imgcls.transfer"}
_UNSAVEABLE = ("callbacks", "accelerator")
_FIELDS = ("format", "estimator", "params", "classes", "image_shape", "frozen_parameters", "history", "architecture",
           "checksum")  # checksum: absent from files written before it was added
_RECIPE_KEYS = {"source", "backbone", "backbone_params", "num_outputs", "network_in_channels", "network_input_size",
                "build_size", "build_channels", "replace_head"}
#: the most values one image may have (3 x 6,688 x 6,688): load() runs one image through the network
_MAX_IMAGE_VALUES = 2**27


class _FieldError(Exception):
    """``(field, problem)``: what is wrong in a model file (:func:`load` raises a ValueError naming the file)."""


def _encode(value: Any) -> Any:
    """JSON-ready form keeping tuples and non-string dict keys."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "__tuple__" not in value and "__items__" not in value:
            return {k: _encode(v) for k, v in value.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be stored as JSON")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        if set(value) == {"__items__"}:
            return {_decode(k): _decode(v) for k, v in value["__items__"]}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _recipe(estimator: Any) -> dict:
    """How to rebuild ``estimator.net_.module_`` without its training data or pretrained weights."""
    network = estimator.net_.module_
    recorded = getattr(network, "recipe", None)  # what the estimator built, where it says so
    if isinstance(recorded, dict) and set(recorded) == _RECIPE_KEYS:
        return dict(recorded)
    from ._core.pretrained import _first_conv_channels
    from ._core.weights import is_checkpoint_path

    channels, height, width = estimator.image_shape_
    recipe = {
        "backbone": estimator._param("backbone"),
        "backbone_params": estimator._param("backbone_params") or {},
        "num_outputs": len(estimator.classes_),
        "network_in_channels": network.in_channels,
        "network_input_size": network.input_size,
        "build_size": (height, width),
    }
    weights = getattr(estimator, "weights", None)
    if type(estimator).__name__ == "CNNClassifier":
        recipe.update(source="registry", build_channels=channels, replace_head=False)
    elif weights is not None and not is_checkpoint_path(weights):
        recipe.update(source="torchvision", build_channels=3, replace_head=True)
    else:
        recipe.update(source="registry", build_channels=_first_conv_channels(network.backbone.state_dict()) or channels,
                      replace_head=True)
    return recipe


def _rebuild(recipe: dict) -> torch.nn.Module:
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
    params = estimator.get_params(deep=False)
    for key in _UNSAVEABLE:
        if params.get(key) is not None:
            raise ValueError(f"{key}= holds Python objects that cannot be saved safely; "
                             f"call set_params({key}=None) before saving (or pickle with joblib).")
    try:
        encoded_params = json.dumps(_encode(params))
    except TypeError as exc:
        raise ValueError(f"A parameter cannot be saved as JSON: {exc}.") from None
    classes = estimator.classes_
    metadata = {
        "format": FORMAT,
        "estimator": name,
        "params": encoded_params,
        "classes": json.dumps({"values": _encode(classes.tolist()), "dtype": classes.dtype.str
                               if classes.dtype != object else "object"}),
        "image_shape": json.dumps([int(v) for v in estimator.image_shape_]),
        "frozen_parameters": json.dumps(list(getattr(estimator, "frozen_parameters_", []))),
        "history": json.dumps(_encode(_plain_history(estimator.history_))),
        "architecture": json.dumps(_encode(_recipe(estimator))),
    }
    module = estimator.net_.module_
    metadata["checksum"] = _checksum(metadata, module)
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


def _checksum(metadata: dict, module: torch.nn.Module) -> str:
    """SHA-256 of the metadata fields (but the checksum) and of the network's tensors."""
    digest = hashlib.sha256()
    for key in sorted(set(metadata) - {"checksum"}):
        digest.update(f"{key}\0{metadata[key]}\0".encode())
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}\0{tensor.dtype}\0{tensor.numel()}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy())
    return digest.hexdigest()


def _plain_history(history: Any) -> list:
    return json.loads(json.dumps(history.to_list(), default=lambda v: v.item() if hasattr(v, "item") else str(v)))


# -- checks of a file's fields (each raises _FieldError) ------------------------------------------------------
def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _field(metadata: dict, key: str) -> Any:
    try:
        return _decode(json.loads(metadata[key]))
    except json.JSONDecodeError as exc:
        raise _FieldError(key, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except (TypeError, ValueError, KeyError, RecursionError) as exc:
        raise _FieldError(key, f"a malformed tuple or mapping ({type(exc).__name__})") from None


def _check_params(cls: type, params: Any, image_shape: tuple) -> Any:
    """The estimator ``cls(**params)``, its parameters checked as ``fit`` checks them."""
    from ._core.data import check_image_shape

    if not isinstance(params, dict):
        raise _FieldError("params", f"a JSON object of parameters is needed, not {type(params).__name__}")
    unknown = sorted(str(k) for k in set(params) - set(cls._get_param_names()))
    if unknown:
        raise _FieldError("params", f"{cls.__name__} takes no parameters {unknown}")
    for key in _UNSAVEABLE:
        if params.get(key) is not None:
            raise _FieldError("params", f"{key}={params[key]!r} cannot come from a file")
    estimator = cls(**params)  # a parameter missing (a file of an older version) takes its default
    probe = cls(**{**params, "device": "cpu"})  # the devices of the loading machine do not matter here
    try:
        probe._validate_params()
        check_random_state(probe.random_state)
        if estimator.device != "auto":
            torch.device(estimator.device)
        shape = check_image_shape(probe.image_shape)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise _FieldError("params", " ".join(str(exc).split()).rstrip(".")) from None
    if shape is not None and shape != image_shape:
        raise _FieldError("image_shape", f"{list(image_shape)} differs from the parameter "
                                         f"image_shape={probe.image_shape!r}")
    return estimator


def _check_classes(info: Any) -> np.ndarray:
    if not isinstance(info, dict) or set(info) != {"values", "dtype"}:
        raise _FieldError("classes", "a JSON object with 'values' and 'dtype' is needed")
    values, name = info["values"], info["dtype"]
    if not isinstance(values, list) or len(values) < 2 or not all(isinstance(v, (str, int, float)) for v in values):
        raise _FieldError("classes", "a list of at least 2 labels (strings or numbers) is needed")
    plain = name == "object" or (isinstance(name, str) and re.fullmatch(r"[<>|=]?[biufU][0-9]{1,6}", name))
    dtype = np.dtype(object if name == "object" else name) if plain else None  # numpy parses other names with ast
    if dtype is None:
        raise _FieldError("classes", f"unknown label dtype {name!r}")
    classes = np.asarray(values, dtype=dtype)
    if classes.ndim != 1 or classes.tolist() != values:
        raise _FieldError("classes", f"the labels do not fit their dtype {name!r}")
    try:
        ordered = np.array_equal(np.unique(classes), classes)
    except TypeError:
        ordered = False
    if not ordered:
        raise _FieldError("classes", "the labels must be distinct and sorted, as fit() stores them")
    return classes


def _check_image_shape(shape: Any) -> tuple[int, int, int]:
    if not isinstance(shape, list) or len(shape) != 3 or not all(_is_count(v) for v in shape):
        raise _FieldError("image_shape", f"[channels, height, width] of positive integers is needed, not {shape!r}")
    if int(np.prod(shape)) > _MAX_IMAGE_VALUES:
        raise _FieldError("image_shape", f"{shape} is larger than any image a model is trained on")
    return tuple(shape)


def _is_size(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_count(v) for v in value)


def _check_recipe(recipe: Any, estimator: Any, n_classes: int, image_shape: tuple) -> dict:
    if not isinstance(recipe, dict) or set(recipe) != _RECIPE_KEYS:
        raise _FieldError("architecture", f"a JSON object with the keys {sorted(_RECIPE_KEYS)} is needed")
    fine = {
        "num_outputs": recipe["num_outputs"] == n_classes,
        "source": recipe["source"] in ("registry", "torchvision"),
        "backbone": recipe["backbone"] == estimator._param("backbone"),
        "backbone_params": isinstance(recipe["backbone_params"], dict),
        "network_in_channels": recipe["network_in_channels"] is None or _is_count(recipe["network_in_channels"]),
        "network_input_size": recipe["network_input_size"] is None or _is_size(recipe["network_input_size"]),
        "build_size": _is_size(recipe["build_size"]) and max(recipe["build_size"]) <= _MAX_IMAGE_VALUES,
        "build_channels": _is_count(recipe["build_channels"]) and recipe["build_channels"] <= _MAX_IMAGE_VALUES,
        "replace_head": isinstance(recipe["replace_head"], bool),
    }
    if type(estimator).__name__ == "CNNClassifier":  # trained from scratch for exactly these images
        fine["backbone_params"] &= recipe["backbone_params"] == (estimator._param("backbone_params") or {})
        fine["build_size"] &= tuple(recipe["build_size"]) == image_shape[1:]
        fine["build_channels"] &= recipe["build_channels"] == image_shape[0]
        fine["replace_head"] &= recipe["replace_head"] is False and recipe["source"] == "registry"
    wrong = [key for key, ok in fine.items() if not ok]
    if wrong:
        raise _FieldError("architecture", f"{wrong[0]}={recipe[wrong[0]]!r} does not fit the {n_classes} classes, "
                                          f"the parameters and image_shape {list(image_shape)}")
    return recipe


def _check_history(history: Any) -> list:
    epochs = isinstance(history, list) and all(isinstance(epoch, dict) for epoch in history)
    batches = [epoch.get("batches", []) for epoch in history] if epochs else []
    if not epochs or not all(isinstance(b, list) and all(isinstance(row, dict) for row in b) for b in batches):
        raise _FieldError("history", "a list of epochs (JSON objects, their 'batches' lists of objects) is needed")
    return history


def _check_tensors(module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Every tensor of the file is one of ``module``'s, of its shape and dtype, and none is missing."""
    expected = module.state_dict(keep_vars=True)
    for name, tensor in tensors.items():
        need = expected.get(name)
        if need is None:
            raise _FieldError("tensors", f"{name!r} is not part of the recorded architecture")
        if need.shape != tensor.shape or need.dtype != tensor.dtype:
            raise _FieldError("tensors", f"{name!r} is {tensor.dtype}{list(tensor.shape)}; the architecture "
                                         f"needs {need.dtype}{list(need.shape)}")
    stored = {id(expected[name]) for name in tensors}  # tied weights are stored once
    missing = [name for name, tensor in expected.items() if id(tensor) not in stored]
    if missing:
        raise _FieldError("tensors", f"{missing[0]!r} of the architecture is missing ({len(missing)} in all)")


def _build_checked(recipe: dict, tensors: dict, frozen: Any, image_shape: tuple, n_classes: int) -> torch.nn.Module:
    """The recorded network holding ``tensors``, checked on the meta device before it is built."""
    try:
        try:
            with torch.device("meta"):
                skeleton = _rebuild(recipe)
        except (RuntimeError, NotImplementedError):  # a plugin builder that needs real tensors
            skeleton = _rebuild(recipe)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise _FieldError("architecture", f"cannot be built: {' '.join(str(exc).split())[:300]}") from None
    _check_tensors(skeleton, tensors)
    names = dict(skeleton.backbone.named_parameters())
    if not isinstance(frozen, list) or not all(isinstance(n, str) and n in names for n in frozen):
        raise _FieldError("frozen_parameters", "a list of parameter names of the network's backbone is needed")
    module = _rebuild(recipe)
    module.load_state_dict(tensors, strict=False)  # names and shapes checked: only tied duplicates are absent
    module.eval()
    try:
        with torch.inference_mode():
            outputs = module(torch.zeros(1, *image_shape)).shape
    except (RuntimeError, ValueError, IndexError) as exc:
        raise _FieldError("image_shape", f"{list(image_shape)} does not fit the network "
                                         f"({str(exc).splitlines()[0][:200]})") from None
    if tuple(outputs) != (1, n_classes):
        raise _FieldError("architecture", f"the network gives {list(outputs)[1:]} outputs for {n_classes} classes")
    return module


def _read(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file (on the CPU)."""
    from safetensors import safe_open

    from .cli.model_files import detect_format

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
    from skorch.history import History

    from ._core import params as P
    from ._core.base import _softmax
    from ._core.net import ImageNeuralNet

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
    try:
        missing = [key for key in _FIELDS if key not in metadata and key != "checksum"]
        extra = sorted(set(metadata) - set(_FIELDS))
        if missing or extra:
            raise _FieldError((missing + extra)[0], "missing" if missing else "not a field of this format")
        image_shape = _check_image_shape(_field(metadata, "image_shape"))
        estimator = _check_params(getattr(importlib.import_module(_ALLOWED[name]), name), _field(metadata, "params"),
                                  image_shape)
        classes = _check_classes(_field(metadata, "classes"))
        recipe = _check_recipe(_field(metadata, "architecture"), estimator, len(classes), image_shape)
        history = _check_history(_field(metadata, "history"))
        frozen = _field(metadata, "frozen_parameters")
        if name == "CNNClassifier" and frozen != []:
            raise _FieldError("frozen_parameters", "a CNNClassifier freezes nothing: [] is needed")
        module = _build_checked(recipe, tensors, frozen, image_shape, len(classes))
        if "checksum" in metadata and metadata["checksum"] != _checksum(metadata, module):
            raise _FieldError("checksum", "the labels, parameters or tensors differ from those saved")
    except _FieldError as exc:
        raise ValueError(f"{path!r} is not an intact sklearn_imgcls model (field {exc.args[0]!r}: {exc.args[1]}); "
                         "the file is damaged or was altered, save the model again.") from None
    module.to(device).set_compute(estimator._param("precision"), estimator._param("channels_last"),
                                  estimator._param("compile"))
    estimator.classes_, estimator.image_shape_ = classes, image_shape
    estimator.n_features_in_ = int(np.prod(image_shape))
    net = ImageNeuralNet(module=module, criterion=torch.nn.CrossEntropyLoss, device=str(device),
                         classes=list(range(len(classes))), predict_nonlinearity=_softmax, train_split=None)
    net.initialize()
    net.module_.eval()
    net.history = History(history)
    estimator.net_, estimator.history_ = net, net.history
    if name == "TransferClassifier":
        estimator.frozen_parameters_ = frozen
    return estimator
