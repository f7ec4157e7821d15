"""Saving fitted classifiers without pickle: weights as safetensors, everything else as JSON.

``save(estimator, "model.safetensors")`` writes one safetensors file: the
network's tensors, and in its header metadata the estimator class, its
parameters, ``classes_``, the training history and a recipe of the network's
architecture. :func:`load` rebuilds the architecture from that recipe (no
pretrained weights file is needed), loads the tensors and returns a fitted
estimator. Nothing in the file is executed on load: classes come from a fixed
allow-list and parameters from JSON.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

__all__ = ["FORMAT", "load", "save"]

FORMAT = "sklearn-imgcls-model/1"
_ALLOWED = {"CNNClassifier": "sklearn_imgcls.cnn", "TransferClassifier": "sklearn_imgcls.transfer"}
_UNSAVEABLE = ("callbacks", "accelerator")


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
    from .pretrained import _first_conv_channels
    from .weights import is_checkpoint_path

    network = estimator.net_.module_
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
    from .network import ImageNetwork
    from .pretrained import replace_head
    from .registry import get_registry

    if recipe["source"] == "torchvision":
        from torchvision.models import get_model

        model = get_model(recipe["backbone"], weights=None)
    else:
        outputs = recipe["num_outputs"] if not recipe["replace_head"] else 1
        model = get_registry().build("backbone", recipe["backbone"], recipe["build_channels"], outputs,
                                     tuple(recipe["build_size"]), **recipe["backbone_params"])
    if recipe["replace_head"]:
        replace_head(model, recipe["num_outputs"])
    channels = recipe["network_in_channels"] or recipe["build_channels"]
    size = recipe["network_input_size"]
    return ImageNetwork(model, torch.zeros(channels), torch.ones(channels), in_channels=recipe["network_in_channels"],
                        input_size=tuple(size) if size is not None else None)


def save(estimator: Any, path: str) -> str:
    """Write a fitted :class:`~sklearn_imgcls.CNNClassifier` or :class:`~sklearn_imgcls.TransferClassifier` to ``path``.

    Returns ``path``. Parameters that are live Python objects (``callbacks``,
    ``accelerator``) cannot be stored: set them to None first.
    """
    from safetensors.torch import save_model

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
        "image_shape": json.dumps(list(estimator.image_shape_)),
        "frozen_parameters": json.dumps(list(getattr(estimator, "frozen_parameters_", []))),
        "history": json.dumps(_encode(_plain_history(estimator.history_))),
        "architecture": json.dumps(_encode(_recipe(estimator))),
    }
    module = estimator.net_.module_
    channels_last = getattr(module, "channels_last", False)
    module.backbone.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous tensors
    try:
        save_model(module, path, metadata=metadata)
    finally:
        if channels_last:
            module.backbone.to(memory_format=torch.channels_last)
    return path


def _plain_history(history: Any) -> list:
    return json.loads(json.dumps(history.to_list(), default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def load(path: str, device: str = "cpu"):
    """Load a model written by :func:`save`; returns the fitted estimator on ``device``."""
    from safetensors import safe_open
    from safetensors.torch import load_model
    from skorch.history import History

    from .base import _softmax
    from .skorch_net import ImageNeuralNet

    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
    except FileNotFoundError:
        raise ValueError(f"No model file at {path!r}.") from None
    except Exception as exc:  # safetensors raises its own error types for non-safetensors files
        raise ValueError(f"{path!r} is not a safetensors model file ({type(exc).__name__}).") from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path!r} was not written by sklearn_imgcls.save (format {metadata.get('format')!r}).")
    name = metadata.get("estimator")
    if name not in _ALLOWED:
        raise ValueError(f"{path!r} names estimator {name!r}, which load() does not create.")
    cls = getattr(importlib.import_module(_ALLOWED[name]), name)
    estimator = cls(**_decode(json.loads(metadata["params"])))
    module = _rebuild(_decode(json.loads(metadata["architecture"])))
    try:
        load_model(module, path, strict=True, device=device)
    except RuntimeError as exc:
        raise ValueError(f"The tensors in {path!r} do not fit the recorded architecture: {str(exc).splitlines()[0]}") from None
    module.set_compute(estimator._param("precision"), estimator._param("channels_last"), estimator._param("compile"))
    classes_info = json.loads(metadata["classes"])
    dtype = object if classes_info["dtype"] == "object" else np.dtype(classes_info["dtype"])
    estimator.classes_ = np.asarray(_decode(classes_info["values"]), dtype=dtype)
    estimator.image_shape_ = tuple(json.loads(metadata["image_shape"]))
    estimator.n_features_in_ = int(np.prod(estimator.image_shape_))
    net = ImageNeuralNet(module=module, criterion=torch.nn.CrossEntropyLoss, device=device,
                         classes=list(range(len(estimator.classes_))), predict_nonlinearity=_softmax,
                         train_split=None)
    net.initialize()
    net.module_.eval()
    net.history = History(_decode(json.loads(metadata["history"])))
    estimator.net_ = net
    estimator.history_ = net.history
    if name == "TransferClassifier":
        estimator.frozen_parameters_ = json.loads(metadata["frozen_parameters"])
    return estimator
