"""Reading a training checkpoint back: the folder layout, the fingerprint, the checks, the exact restore.

:class:`sklearn_imgcls.checkpoints.TrainingCheckpoint` writes one complete set
per epoch into ``<dirname>/epoch-NNNN/`` (:data:`CHECKPOINT_FILES` plus
:data:`MANIFEST_FILE`) and points :data:`POINTER_FILE` at it. This module holds
what both sides of that format share (the names, :data:`FORMAT_VERSION`,
:func:`training_fingerprint`, :func:`random_state_of`) and the reader:
:func:`restore_checkpoint`, which the estimator's ``fit(..., resume_from=...)``
calls.

Loading goes through skorch's own ``net.load_params`` (weights, optimizer,
criterion); what skorch's :class:`~skorch.callbacks.LoadInitState` does not
give is added here: the manifest's checksums are verified first and the
verified bytes are what is loaded (skorch would read the files from disk
unchecked), the fingerprint of parameters and data is compared, the history
is checked against the manifest, and the RNG states are restored, so that on
a CPU a resumed fit equals an uninterrupted one. Nothing here imports the
public top level of the package.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from typing import Any

import numpy as np
import torch
from skorch.history import History

from .network import module_device
from .schedules import LRSchedule

__all__ = [
    "CHECKPOINT_FILES", "EPOCH_FOLDER", "FORMAT_VERSION", "MANIFEST_FILE", "POINTER_FILE", "SKORCH_FILES", "STATE_FILE",
    "describe_training", "latest_set", "random_state_of", "restore_checkpoint", "training_fingerprint",
    "training_fingerprint_of",
]

#: version of the folder layout; a reader refuses newer ones
FORMAT_VERSION = 1
#: the file in the checkpoint folder that names the latest complete set
POINTER_FILE = "latest.json"
#: the file in each set that lists the checksums, the epoch count and the fingerprint
MANIFEST_FILE = "manifest.json"
#: the file in each set that holds the RNG (and gradient scaler) states
STATE_FILE = "state.pt"
#: the files of one set, besides the manifest
CHECKPOINT_FILES = ("params.pt", "optimizer.pt", "criterion.pt", "history.json", STATE_FILE)
#: the files skorch's ``save_params`` / ``load_params`` write and read, by keyword
SKORCH_FILES = (("f_params", "params.pt"), ("f_optimizer", "optimizer.pt"), ("f_criterion", "criterion.pt"))
#: the name of one set's folder
EPOCH_FOLDER = re.compile(r"^epoch-(\d+)$")

#: estimator parameters that do not change what is trained (how fast, where, how verbosely, how long)
_NOT_TRAINING = frozenset(
    {"max_epochs", "verbose", "callbacks", "num_workers", "num_threads", "device", "accelerator", "compile", "channels_last", "tta",
     "random_state", "threshold", "log"}
)

#: the net attribute where :func:`describe_training` leaves the fingerprint for the callback and the resume check
_FINGERPRINT_ATTR = "training_fingerprint_"


def _describe(value: Any) -> Any:
    """JSON stand-in for a parameter value that JSON cannot hold (classes, callables, numpy values)."""
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))  # no memory addresses: they change every run


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=_describe))


def training_fingerprint(estimator: Any, classes: Any, y_encoded: np.ndarray, image_shape: tuple) -> dict[str, Any]:
    """What a checkpoint must share with the fit that resumes it.

    Parameters
    ----------
    estimator : BaseImageClassifier
        Its ``get_params(deep=False)``, less those that do not change the
        training (``max_epochs``, ``verbose``, ``callbacks``, ``num_workers``,
        ``device``, ``accelerator``, ``compile``, ``channels_last``, ``tta``,
        ``random_state``: the restored RNG states replace the seed).
    classes : array-like
        The sorted class labels.
    y_encoded : numpy.ndarray
        The encoded labels of the training images, in order (multi-label:
        the 2-D 0/1 matrix, recorded with ``"multilabel": True``).
    image_shape : tuple of int
        ``(C, H, W)`` of the images.

    Returns
    -------
    dict
        JSON-compatible description.
    """
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in _NOT_TRAINING}
    labels = np.ascontiguousarray(np.asarray(y_encoded, dtype=np.int64))
    fingerprint = {"estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}", "params": params,
                   "classes": np.asarray(classes).tolist(), "n_images": int(len(labels)),
                   "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                   "image_shape": [int(s) for s in image_shape]}
    if labels.ndim == 2:  # multi-label: the 0/1 matrix row by row (multi-class fingerprints stay as they were)
        fingerprint["multilabel"] = True
    return _plain(fingerprint)


def describe_training(net: Any, estimator: Any, classes: Any, y_encoded: np.ndarray, image_shape: tuple) -> None:
    """Tell ``net`` (and so its :class:`TrainingCheckpoint` callbacks) what it is about to train.

    Parameters
    ----------
    net : skorch.NeuralNet
        The net about to be trained; the fingerprint is stored on it.
    estimator, classes, y_encoded, image_shape
        As in :func:`training_fingerprint`.
    """
    setattr(net, _FINGERPRINT_ATTR, training_fingerprint(estimator, classes, y_encoded, image_shape))


def training_fingerprint_of(net: Any) -> dict[str, Any] | None:
    """The fingerprint :func:`describe_training` left on ``net``; None for a bare skorch net."""
    return getattr(net, _FINGERPRINT_ATTR, None)


def _generator(net: Any) -> torch.Generator | None:
    """The training iterator's generator (shuffling, sampling, augmentation), if it has one."""
    generator = net.get_params_for("iterator_train").get("generator")
    return generator if isinstance(generator, torch.Generator) else None


def random_state_of(net: Any) -> dict[str, Any]:
    """The RNG and scaler states a resumed fit needs (what ``state.pt`` holds).

    Parameters
    ----------
    net : skorch.NeuralNet
        The net being trained.

    Returns
    -------
    dict
        Tensors and plain values, loadable with ``torch.load(weights_only=True)``.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    generator = _generator(net)
    if generator is not None:
        state["generator"] = generator.get_state()
        state["seed"] = int(generator.initial_seed())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    scaler = getattr(net, "grad_scaler_", None)
    if scaler is not None:
        state["grad_scaler"] = scaler.state_dict()
    return state


def _fail(folder: str, problem: str, fix: str = "delete the folder to train afresh") -> ValueError:
    return ValueError(f"Cannot resume from {folder!r}: {problem}; {fix}.")


def _read_json(folder: str, path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(folder, f"its {what} {os.path.relpath(path, folder)} cannot be read ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise _fail(folder, f"its {what} {os.path.relpath(path, folder)} is not a JSON object")
    return value


def latest_set(folder: str) -> str:
    """The name (``epoch-NNNN``) of the latest complete set in a checkpoint folder.

    Parameters
    ----------
    folder : str
        A folder written by :class:`TrainingCheckpoint`.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        No such folder, no pointer file (nothing finished, or the older
        layout without checksums), or a pointer that names no set.
    """
    pointer = os.path.join(folder, POINTER_FILE)
    if not os.path.isdir(folder):
        raise _fail(folder, "no such folder", "check the path, or train without resuming first")
    if not os.path.isfile(pointer):
        if os.path.isfile(os.path.join(folder, "params.pt")):
            raise _fail(folder, "it lacks latest.json: it holds a checkpoint in the older layout without "
                                "checksums, RNG states or a manifest, which cannot be checked or resumed exactly")
        raise _fail(folder, f"it lacks {POINTER_FILE}, so it holds no complete checkpoint (none was finished, or this "
                            "is not a checkpoint folder)", "train without resuming")
    latest = _read_json(folder, pointer, "pointer").get("latest")
    if not isinstance(latest, str) or not EPOCH_FOLDER.match(latest):
        raise _fail(folder, f"{POINTER_FILE} names no checkpoint ({latest!r})")
    return latest


def _differences(saved: dict, current: dict) -> list[str]:
    """Plain-language differences between the checkpoint's fingerprint and this fit's."""
    found = []
    if saved.get("estimator") != current["estimator"]:
        found.append(f"it was written by {saved.get('estimator')}, not {current['estimator']}")
    saved_params = saved.get("params", {})
    for key in sorted(set(saved_params) | set(current["params"])):
        if saved_params.get(key, "<unset>") != current["params"].get(key, "<unset>"):
            found.append(f"{key}={current['params'].get(key, '<unset>')!r} here but "
                         f"{saved_params.get(key, '<unset>')!r} in the checkpoint")
    if saved.get("classes") != current["classes"]:
        found.append(f"the classes are {current['classes']} here but {saved.get('classes')} in the checkpoint")
    elif saved.get("n_images") != current["n_images"]:
        found.append(f"X holds {current['n_images']} images here but held {saved.get('n_images')}")
    elif saved.get("labels_sha256") != current["labels_sha256"]:
        found.append("the labels y differ (same classes and number of images, other values or order)")
    if saved.get("image_shape") != current["image_shape"]:
        found.append(f"the images are {tuple(current['image_shape'])} here but were {tuple(saved.get('image_shape') or ())}")
    return found


def _check_fingerprint(folder: str, saved: Any, current: dict | None) -> None:
    if current is None:
        return  # a bare skorch net: nothing to compare with
    if not isinstance(saved, dict):
        raise _fail(folder, "its manifest has no fingerprint of the estimator and data (written by a bare skorch net)")
    found = _differences(saved, current)
    if found:
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        raise ValueError(
            f"The checkpoint in {folder!r} does not fit this estimator and data: {'; '.join(found[:3])}{more}. "
            "Resume with the same parameters and images, or delete the folder to train afresh."
        )


def _load_verified(folder: str, latest: str) -> tuple[dict, dict[str, bytes]]:
    """The manifest and the bytes of every file of the set, checked against the manifest."""
    epoch_folder = os.path.join(folder, latest)
    manifest = _read_json(folder, os.path.join(epoch_folder, MANIFEST_FILE), "manifest")
    version = manifest.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _fail(folder, f"its format {version!r} is newer than this sklearn-imgcls reads ({FORMAT_VERSION})",
                    "upgrade sklearn-imgcls")
    checksums = manifest.get("files")
    if not isinstance(checksums, dict) or sorted(checksums) != sorted(CHECKPOINT_FILES):
        raise _fail(folder, f"the manifest of {latest} does not list the files {list(CHECKPOINT_FILES)}")
    contents = {}
    for name, expected in checksums.items():
        path = os.path.join(epoch_folder, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise _fail(folder, f"{latest}/{name} cannot be read ({exc.strerror or exc})") from None
        if hashlib.sha256(data).hexdigest() != expected:
            raise _fail(folder, f"{latest}/{name} is damaged ({len(data)} bytes; its checksum does not match the "
                                "manifest: truncated or changed after it was written)")
        contents[name] = data
    return manifest, contents


def restore_checkpoint(net: Any, folder: str) -> int:
    """Check the latest set in ``folder`` and load it into ``net``; return the number of epochs it holds.

    ``net`` is initialised here. Besides weights, optimizer, criterion and
    history, the RNG states are restored, so that training on continues as
    the interrupted fit would have.

    Parameters
    ----------
    net : skorch.NeuralNet
        The freshly built net of the fit that resumes (see
        :func:`describe_training` for the fingerprint it is checked against).
    folder : str
        A folder written by :class:`TrainingCheckpoint`.

    Returns
    -------
    int
        Epochs trained so far (the length of the restored history).

    Raises
    ------
    ValueError
        The folder holds no complete checkpoint, a damaged one, or one of
        other parameters or data; the message says which and what to do.
    """
    folder = os.fspath(folder)
    latest = latest_set(folder)
    manifest, contents = _load_verified(folder, latest)
    try:
        history = History(json.loads(contents["history.json"]))
    except (ValueError, TypeError):
        raise _fail(folder, f"{latest}/history.json is not a skorch history") from None
    epochs = manifest.get("epochs")
    if epochs != len(history) or int(EPOCH_FOLDER.match(latest).group(1)) != epochs:
        raise _fail(folder, f"{latest} holds a history of {len(history)} epochs but its manifest says {epochs!r}")
    _check_fingerprint(folder, manifest.get("fingerprint"), training_fingerprint_of(net))
    if not net.initialized_:
        net.initialize()
    try:
        state = torch.load(io.BytesIO(contents[STATE_FILE]), weights_only=True)
        net.load_params(**{key: io.BytesIO(contents[name]) for key, name in SKORCH_FILES})
    except (RuntimeError, KeyError, ValueError, EOFError, OSError, TypeError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(
            f"The checkpoint in {folder!r} does not fit this estimator and data ({first}); "
            "resume with the same parameters and images, or delete the folder to train afresh."
        ) from None
    net.history = history
    _restore_state(net, folder, state, manifest)
    return len(history)


def _restore_state(net: Any, folder: str, state: dict, manifest: dict) -> None:
    generator = _generator(net)
    if generator is not None and "generator" in state:
        if net.train_split is not None and state.get("seed") != generator.initial_seed():
            raise ValueError(
                f"Cannot resume from {folder!r}: its validation split was drawn with another seed, and this "
                "estimator's random_state gives a different one (random_state=None draws a new seed every fit). "
                "Resume with the random_state of the interrupted fit, or delete the folder to train afresh."
            )
        generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "grad_scaler" in state:
        net.grad_scaler_ = torch.amp.GradScaler(module_device(net.module_).type)
        net.grad_scaler_.load_state_dict(state["grad_scaler"])
    scheduled = any(isinstance(cb, LRSchedule) for _, cb in getattr(net, "callbacks_", []))
    saved_max = manifest.get("max_epochs")
    if scheduled and saved_max is not None and saved_max != net.max_epochs:
        warnings.warn(
            f"Resuming {folder!r} with max_epochs={net.max_epochs} while it was trained for max_epochs={saved_max}: "
            "the learning-rate schedule is recomputed for the new length and jumps where training resumes.",
            UserWarning, stacklevel=3,
        )
