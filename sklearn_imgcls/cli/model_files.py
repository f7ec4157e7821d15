"""Model files of the command line: recognise, read and write them safely.

The command line writes models in the safe format of :mod:`sklearn_imgcls.persistence`
(safetensors tensors + JSON metadata; nothing in the file is executed on
load). Pickles (joblib, ``torch.save`` archives) run code when loaded, so they
are read and written only when the caller opts in (``--allow-pickle``). The
format is recognised from the file's first bytes, not from its name, and every
problem becomes a one-line :class:`ValueError` that names the file and the fix.
"""

from __future__ import annotations

import os
from typing import Any

from .._core.file_formats import EXPECTED_MODEL, detect_format

__all__ = ["PICKLE_SUFFIXES", "detect_format", "load_model_file", "save_model_file", "output_format"]

#: ``--out`` suffixes that ask for a joblib pickle (written only with ``allow_pickle=True``)
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.rstrip(".") if text else type(exc).__name__


def _check_classifier(estimator: Any, path: str) -> Any:
    if not (hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")):
        raise ValueError(f"{path!r} does not hold a fitted classifier (it holds {type(estimator).__name__}); "
                         f"{EXPECTED_MODEL}.")
    return estimator


def load_model_file(path: str, allow_pickle: bool = False, warn=None) -> Any:
    """Load the fitted classifier in ``path``.

    Parameters
    ----------
    path : str
        A safetensors model file, or (with ``allow_pickle``) a joblib pickle or ``torch.save`` archive.
    allow_pickle : bool
        Read pickles too. Unpickling runs code from the file: only for files you trust.
    warn : callable or None
        Called with a one-line warning before a pickle is unpickled.

    Raises
    ------
    ValueError
        One line naming ``path`` and the fix, whatever is wrong with the file.
    """
    kind = detect_format(path)
    if kind == "safetensors":
        from ..persistence import load

        try:
            return _check_classifier(load(path), path)
        except Exception as exc:  # noqa: BLE001 - a damaged file can fail in many ways; all are the user's file
            raise ValueError(f"Cannot load model file {path!r}: {_first_line(exc)}; the file is damaged or was "
                             f"altered, train or copy it again.") from None
    if not allow_pickle:
        raise ValueError(f"{path!r} is a pickle, and loading a pickle can run any code in it; re-save the model "
                         f"safely with `estimator.save('model.safetensors')`, or add --allow-pickle if you trust "
                         f"the file.")
    if warn is not None:
        warn(f"unpickling {path!r} runs any code it contains; use --allow-pickle only for files you trust.")
    try:
        if kind == "torch-zip":
            import torch

            estimator = torch.load(path, weights_only=False, map_location="cpu")
        else:
            import joblib

            estimator = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways
        raise ValueError(f"Cannot unpickle model file {path!r}: {_first_line(exc)}; the file is damaged or "
                         f"needs other packages, train or copy it again.") from None
    return _check_classifier(estimator, path)


def output_format(path: str, allow_pickle: bool = False) -> str:
    """Decide, before any training, the format an ``--out`` path gets: ``"safetensors"`` or ``"pickle"``.

    A pickle only when ``path`` ends in ``.joblib``, ``.pkl`` or ``.pickle``
    *and* ``allow_pickle`` is set; every other name gets the safe format.

    Raises
    ------
    ValueError
        For a pickle suffix without ``allow_pickle``, or a ``path`` that is a folder.
    """
    if os.path.isdir(path):
        example = os.path.join(path, "model.safetensors")
        raise ValueError(f"--out {path!r} is a folder; give a file name such as {example!r}.")
    if path.lower().endswith(PICKLE_SUFFIXES):
        if not allow_pickle:
            stem = os.path.splitext(path)[0]
            raise ValueError(f"--out {path!r} asks for a pickle, which runs code when loaded; write "
                             f"{stem + '.safetensors'!r} (the safe default format) or add --allow-pickle.")
        return "pickle"
    return "safetensors"


def save_model_file(estimator: Any, path: str, allow_pickle: bool = False) -> str:
    """Write ``estimator`` to ``path`` atomically, in the format :func:`output_format` picks; returns it.

    Callbacks (such as the command line's checkpoint) are cleared first: they
    are live Python objects that the safe format cannot store.
    """
    from .._core.atomic import atomic_path

    kind = output_format(path, allow_pickle)
    if estimator.get_params(deep=False).get("callbacks") is not None:
        estimator.set_params(callbacks=None)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if kind == "pickle":
        import joblib

        with atomic_path(path) as temporary:
            joblib.dump(estimator, temporary)
    else:
        estimator.save(path)  # atomic itself
    return kind
