"""What the ``sklearn-imgcls`` commands read: parameters, grids, datasets, image lists and model files.

Shared by the training commands (:mod:`sklearn_imgcls.cli.train_commands`) and
the inspection commands (:mod:`sklearn_imgcls.cli.commands`). Every problem is
a :class:`ValueError` whose one-line message names it and the fix; warnings go
to stderr with the ``sklearn-imgcls: warning:`` prefix.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

import numpy as np

from .options import estimator_class

__all__ = ["TUPLE_PARAMS", "expand_images", "invalid_paths", "load_data", "load_model", "make_estimator",
           "parse_params", "read_grid", "save_model", "warn"]

#: parameters whose JSON lists become tuples
TUPLE_PARAMS = frozenset({"image_shape", "input_size"})

_SHOWN = 50  # bad files named in one error line; `validate` lists them all


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """Turn ``["max_epochs=5", "augment=[\\"flip_h\\"]", "backbone=bn_cnn"]`` into a dict.

    Values are read as JSON when they parse (numbers, lists, ``null``,
    ``true``), else kept as strings; lists become tuples for shape parameters.

    Parameters
    ----------
    items : sequence of str
        ``KEY=VALUE`` strings, as given to ``--param``.

    Returns
    -------
    dict
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes key=value, got {item!r}.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params[key] = tuple(value) if key in TUPLE_PARAMS and isinstance(value, list) else value
    return params


def make_estimator(kind: str, backbone: str | None, params: dict[str, Any]) -> Any:
    """An unfitted estimator of ``kind`` (``--estimator``) with ``backbone`` and ``params`` set.

    Raises
    ------
    ValueError
        An unknown ``kind`` or parameter name (the message lists the known ones).
    """
    cls = estimator_class(kind)
    estimator = cls() if backbone is None else cls(backbone=backbone)
    unknown = sorted(set(params) - set(estimator.get_params()))
    if unknown:
        raise ValueError(f"Unknown parameter(s) {unknown} for {cls.__name__}; it takes {sorted(estimator.get_params())}.")
    return estimator.set_params(**params)


def warn(message: str) -> None:
    """Print ``message`` on stderr as a command-line warning."""
    print(f"sklearn-imgcls: warning: {message}", file=sys.stderr)


def load_model(path: str, allow_pickle: bool = False) -> Any:
    """Read a model file (see :func:`~sklearn_imgcls.cli.model_files.load_model_file`), warnings on stderr."""
    from .model_files import load_model_file

    return load_model_file(path, allow_pickle, warn=warn)


def save_model(estimator: Any, path: str, allow_pickle: bool = False) -> None:
    """Write ``estimator`` to ``path`` in the safe format (a pickle only when asked for, with a warning)."""
    from .model_files import save_model_file

    if save_model_file(estimator, path, allow_pickle) == "pickle":
        warn(f"wrote {path!r} as a joblib pickle (asked for by its suffix and --allow-pickle); loading it runs "
             f"code, so share a .safetensors model instead.")


def _invalid_report(bad: Sequence[tuple[str, str]]) -> str:
    shown = ", ".join(f"{path!r} ({reason.rstrip('.')})" for path, reason in bad[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    return f"{len(bad)} unreadable image file(s): {shown}{more}"


def invalid_paths(paths: Sequence[str], skip_invalid: bool) -> set[str]:
    """The undecodable files among ``paths``: an error naming them all, or (``skip_invalid``) a note on stderr."""
    from .._core.images import find_invalid_images

    bad = find_invalid_images(list(paths))
    if bad and len(bad) == len(paths):
        raise ValueError(f"None of the {len(paths)} image file(s) can be decoded: {_invalid_report(bad)}.")
    if bad and not skip_invalid:
        raise ValueError(f"{_invalid_report(bad)}; fix or remove them, or add --skip-invalid to leave them out.")
    if bad:
        warn(f"skipped {_invalid_report(bad)}.")
    return {path for path, _ in bad}


def load_data(spec: str, skip_invalid: bool = False) -> tuple[Any, np.ndarray, tuple | None]:
    """``load_dataset(spec)``, with every undecodable image file named at once, or left out with ``skip_invalid``."""
    from ..datasets import load_dataset

    X, y, shape = load_dataset(spec)
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":  # file paths, decoded lazily: check them now
        bad = invalid_paths(X.tolist(), skip_invalid)
        if bad:
            keep = np.array([path not in bad for path in X.tolist()], dtype=bool)
            X, y = X[keep], y[keep]
    return X, y, shape


def expand_images(items: Sequence[str]) -> list[str]:
    """The image files named by ``items`` (files, or folders searched for images)."""
    from ..datasets import list_image_files

    paths: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = list_image_files(item)
            if not found:
                raise ValueError(f"No image files in folder {item!r}.")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise ValueError(f"No such image file or folder: {item!r}.")
    return paths


def read_grid(path: str) -> dict[str, list]:
    """A parameter grid from a JSON or YAML file mapping parameter names to non-empty lists."""
    if not os.path.isfile(path):
        raise ValueError(f"No grid file at {path!r}.")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise ValueError("Reading a YAML grid needs PyYAML: pip install pyyaml (or write the grid as JSON).") from None
        try:
            grid = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    else:
        try:
            grid = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ValueError(f"{path} must map parameter names to non-empty lists of values, e.g. {{\"lr\": [0.001, 0.003]}}.")
    return {k: [tuple(v) if k in TUPLE_PARAMS and isinstance(v, list) else v for v in values] for k, values in grid.items()}
