"""The fields of a model file: JSON encoding, checksum, and one check per field.

:mod:`sklearn_imgcls.persistence` writes and reads model files; the pieces
here know nothing of estimators. Each check returns the field's value or
raises :class:`FieldError` ``(field, problem)``, which ``load`` turns into a
ValueError naming the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np
import torch

__all__ = ["MAX_IMAGE_VALUES", "FieldError", "check_classes", "check_history", "check_image_shape_field", "check_multilabel",
           "check_tensors", "checksum", "decode", "encode", "is_count", "is_size", "plain_history", "read_field"]

#: the most values one image may have (3 x 6,688 x 6,688): load() runs one image through the network
MAX_IMAGE_VALUES = 2**27


class FieldError(Exception):
    """``(field, problem)``: what is wrong in a model file (:func:`sklearn_imgcls.persistence.load` raises a ValueError naming the file)."""


def encode(value: Any) -> Any:
    """JSON-ready form keeping tuples and non-string dict keys."""
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and "__tuple__" not in value and "__items__" not in value:
            return {k: encode(v) for k, v in value.items()}
        return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be stored as JSON")


def decode(value: Any) -> Any:
    """The inverse of :func:`encode` (tuples and non-string keys back)."""
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(decode(v) for v in value["__tuple__"])
        if set(value) == {"__items__"}:
            return {decode(k): decode(v) for k, v in value["__items__"]}
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value

def checksum(metadata: dict, module: torch.nn.Module) -> str:
    """SHA-256 of the metadata fields (but the checksum) and of the network's tensors."""
    digest = hashlib.sha256()
    for key in sorted(set(metadata) - {"checksum"}):
        digest.update(f"{key}\0{metadata[key]}\0".encode())
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}\0{tensor.dtype}\0{tensor.numel()}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy())
    return digest.hexdigest()


def plain_history(history: Any) -> list:
    """A skorch history as JSON values (tensors and numpy scalars as numbers, the rest as text)."""
    return json.loads(json.dumps(history.to_list(), default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def is_count(value: Any) -> bool:
    """Whether ``value`` is an int >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def read_field(metadata: dict, key: str) -> Any:
    """The decoded JSON value of field ``key``."""
    try:
        return decode(json.loads(metadata[key]))
    except json.JSONDecodeError as exc:
        raise FieldError(key, f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    except (TypeError, ValueError, KeyError, RecursionError) as exc:
        raise FieldError(key, f"a malformed tuple or mapping ({type(exc).__name__})") from None

def check_multilabel(value: Any) -> bool:
    """Field ``multilabel``: whether the network has one sigmoid per label (a bool; files before it: absent)."""
    if not isinstance(value, bool):
        raise FieldError("multilabel", f"true or false is needed, not {value!r}")
    return value


def check_classes(info: Any, multilabel: bool = False) -> np.ndarray:
    """The class labels of field ``classes``: at least 2, distinct, sorted, of a plain dtype.

    Multi-label models keep their labels in the order of the indicator
    matrix's columns (a DataFrame's, not necessarily sorted): distinct suffices.
    """
    if not isinstance(info, dict) or set(info) != {"values", "dtype"}:
        raise FieldError("classes", "a JSON object with 'values' and 'dtype' is needed")
    values, name = info["values"], info["dtype"]
    if not isinstance(values, list) or len(values) < 2 or not all(isinstance(v, (str, int, float)) for v in values):
        raise FieldError("classes", "a list of at least 2 labels (strings or numbers) is needed")
    plain = name == "object" or (isinstance(name, str) and re.fullmatch(r"[<>|=]?[biufU][0-9]{1,6}", name))
    dtype = np.dtype(object if name == "object" else name) if plain else None  # numpy parses other names with ast
    if dtype is None:
        raise FieldError("classes", f"unknown label dtype {name!r}")
    classes = np.asarray(values, dtype=dtype)
    if classes.ndim != 1 or classes.tolist() != values:
        raise FieldError("classes", f"the labels do not fit their dtype {name!r}")
    if multilabel:
        if len(set(values)) != len(values):
            raise FieldError("classes", "the labels of a multi-label model must be distinct")
        return classes
    try:
        ordered = np.array_equal(np.unique(classes), classes)
    except TypeError:
        ordered = False
    if not ordered:
        raise FieldError("classes", "the labels must be distinct and sorted, as fit() stores them")
    return classes


def check_image_shape_field(shape: Any) -> tuple[int, int, int]:
    """Field ``image_shape``: ``(C, H, W)`` of positive integers of a plausible size."""
    if not isinstance(shape, list) or len(shape) != 3 or not all(is_count(v) for v in shape):
        raise FieldError("image_shape", f"[channels, height, width] of positive integers is needed, not {shape!r}")
    if int(np.prod(shape)) > MAX_IMAGE_VALUES:
        raise FieldError("image_shape", f"{shape} is larger than any image a model is trained on")
    return tuple(shape)


def is_size(value: Any) -> bool:
    """Whether ``value`` is a ``(height, width)`` pair of counts."""
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(is_count(v) for v in value)

def check_history(history: Any) -> list:
    """Field ``history``: a list of epochs, each a JSON object with a list of batch objects."""
    epochs = isinstance(history, list) and all(isinstance(epoch, dict) for epoch in history)
    batches = [epoch.get("batches", []) for epoch in history] if epochs else []
    if not epochs or not all(isinstance(b, list) and all(isinstance(row, dict) for row in b) for b in batches):
        raise FieldError("history", "a list of epochs (JSON objects, their 'batches' lists of objects) is needed")
    return history


def check_tensors(module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Every tensor of the file is one of ``module``'s, of its shape and dtype, and none is missing."""
    expected = module.state_dict(keep_vars=True)
    for name, tensor in tensors.items():
        need = expected.get(name)
        if need is None:
            raise FieldError("tensors", f"{name!r} is not part of the recorded architecture")
        if need.shape != tensor.shape or need.dtype != tensor.dtype:
            raise FieldError("tensors", f"{name!r} is {tensor.dtype}{list(tensor.shape)}; the architecture "
                                         f"needs {need.dtype}{list(need.shape)}")
    stored = {id(expected[name]) for name in tensors}  # tied weights are stored once
    missing = [name for name, tensor in expected.items() if id(tensor) not in stored]
    if missing:
        raise FieldError("tensors", f"{missing[0]!r} of the architecture is missing ({len(missing)} in all)")
