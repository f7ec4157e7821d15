"""Per-epoch training checkpoints that survive crashes and resume a fit exactly.

:class:`TrainingCheckpoint` (a skorch :class:`~skorch.callbacks.Checkpoint`)
writes, after every epoch, one complete set into ``<dirname>/epoch-NNNN/``::

    params.pt  optimizer.pt  criterion.pt  history.json  state.pt  manifest.json

The set is written into a temporary folder and renamed into place
(:func:`sklearn_imgcls._core.atomic.atomic_folder`); then ``latest.json`` is
switched to it atomically and older sets are removed. A crash or ``kill -9``
at any moment leaves the previous complete set in force. ``state.pt`` holds
what makes a resumed fit continue *exactly* as an uninterrupted one would: the
state of the training iterator's :class:`torch.Generator` (shuffling,
sampling, augmentation) and of torch's global RNG (dropout). The learning-rate
schedule (:class:`~sklearn_imgcls._core.schedules.LRSchedule`) re-derives its
position from the restored history. ``manifest.json`` records the format
version, the epoch count, a SHA-256 checksum of every file and a fingerprint
of the training (the estimator's parameters that shape it, the classes, the
number of images and a hash of the labels).

``estimator.fit(X, y, resume_from=dirname)`` calls :func:`restore_checkpoint`,
which checks all of that and refuses with a :class:`ValueError` naming the
folder and the problem: a damaged file, a history that does not match, other
parameters or other data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import warnings
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Checkpoint, PrintLog
from skorch.history import History

from ._core.atomic import atomic_folder, remove_stale_partials, write_bytes_atomically
from ._core.schedules import LRSchedule

__all__ = ["FORMAT_VERSION", "TrainingCheckpoint", "describe_training", "restore_checkpoint", "training_fingerprint"]

#: version of the folder layout written here; a reader refuses newer ones
FORMAT_VERSION = 1

_POINTER = "latest.json"
_MANIFEST = "manifest.json"
_STATE = "state.pt"
_SET = ("params.pt", "optimizer.pt", "criterion.pt", "history.json", _STATE)
_EPOCH = re.compile(r"^epoch-(\d+)$")

#: estimator parameters that do not change what is trained (how fast, where, how verbosely, how long)
_NOT_TRAINING = frozenset(
    {"max_epochs", "verbose", "callbacks", "num_workers", "num_threads", "device", "accelerator", "compile", "channels_last", "tta",
     "random_state"}
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
        The encoded labels of the training images, in order.
    image_shape : tuple of int
        ``(C, H, W)`` of the images.

    Returns
    -------
    dict
        JSON-compatible description.
    """
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in _NOT_TRAINING}
    labels = np.ascontiguousarray(np.asarray(y_encoded, dtype=np.int64))
    return _plain({"estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}", "params": params,
                   "classes": np.asarray(classes).tolist(), "n_images": int(len(labels)),
                   "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
                   "image_shape": [int(s) for s in image_shape]})


def describe_training(net: Any, estimator: Any, classes: Any, y_encoded: np.ndarray, image_shape: tuple) -> None:
    """Tell ``net`` (and so its :class:`TrainingCheckpoint` callbacks) what it is about to train."""
    setattr(net, _FINGERPRINT_ATTR, training_fingerprint(estimator, classes, y_encoded, image_shape))


def _generator(net: Any) -> torch.Generator | None:
    """The training iterator's generator (shuffling, sampling, augmentation), if it has one."""
    generator = net.get_params_for("iterator_train").get("generator")
    return generator if isinstance(generator, torch.Generator) else None


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays recorded by callbacks
        return value.tolist()
    raise TypeError(f"history holds a {type(value).__name__}, which JSON cannot store")


class _Buffer(io.BytesIO):
    """A BytesIO that outlives skorch's ``open_file_like`` (which closes what it was given)."""

    close = lambda self: None  # noqa: E731


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _state(net: Any) -> dict[str, Any]:
    """The RNG and scaler states a resumed fit needs, as tensors and plain values (``weights_only`` loadable)."""
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


class TrainingCheckpoint(Checkpoint):
    """Save a complete, checked checkpoint after every epoch; resume with ``fit(..., resume_from=dirname)``.

    Each epoch's files appear together or not at all (see the module
    docstring); only the latest complete set is kept. The callback runs after
    all others at the end of an epoch, so the saved history row is complete.
    A failed write (full disk) raises an :class:`OSError` naming the folder;
    the previous set stays valid.

    Parameters
    ----------
    dirname : str
        The checkpoint folder (created when missing).

    Examples
    --------
    >>> from sklearn_imgcls import CNNClassifier  # doctest: +SKIP
    >>> clf = CNNClassifier(callbacks=[TrainingCheckpoint("run.checkpoint")])  # doctest: +SKIP
    >>> clf.fit(X, y)  # interrupted (Ctrl-C, crash, kill)  # doctest: +SKIP
    >>> clf.fit(X, y, resume_from="run.checkpoint")  # continues up to max_epochs  # doctest: +SKIP
    """

    def __init__(self, dirname: str) -> None:
        super().__init__(monitor=None, f_params="params.pt", f_optimizer="optimizer.pt", f_criterion="criterion.pt",
                         f_history="history.json", dirname=dirname, load_best=False)

    def _get_param_names(self) -> list[str]:
        return ["dirname"]  # the rest is fixed by the layout (and sklearn's clone rebuilds from this)

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        """Move this callback behind all others (but the log printers) so it saves complete epochs."""
        others = [(n, cb) for n, cb in net.callbacks_ if cb is not self and not isinstance(cb, PrintLog)]
        mine = [(n, cb) for n, cb in net.callbacks_ if cb is self]
        printers = [(n, cb) for n, cb in net.callbacks_ if isinstance(cb, PrintLog) and cb is not self]
        net.callbacks_ = others + mine + printers  # a new list: skorch's loop over the old one is unaffected

    def save_model(self, net: Any) -> None:
        """Write the epoch's set atomically, point ``latest.json`` at it and drop older sets."""
        accelerator = getattr(net, "accelerator", None)
        if accelerator is not None and not getattr(accelerator, "is_main_process", True):
            return  # one writer per run: the other accelerate processes hold the same weights
        files = {}
        for key, name in (("f_params", "params.pt"), ("f_optimizer", "optimizer.pt"), ("f_criterion", "criterion.pt")):
            buffer = _Buffer()
            net.save_params(**{key: buffer})
            files[name] = buffer.getvalue()
        try:
            files["history.json"] = json.dumps(net.history.to_list(), default=_json_default).encode()
        except TypeError as exc:
            raise ValueError(f"Cannot checkpoint into {self.dirname!r}: {exc}; record plain numbers in it.") from None
        buffer = io.BytesIO()
        torch.save(_state(net), buffer)
        files[_STATE] = buffer.getvalue()
        epochs = len(net.history)
        manifest = {"format": FORMAT_VERSION, "epochs": epochs, "max_epochs": int(net.max_epochs),
                    "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
                    "fingerprint": getattr(net, _FINGERPRINT_ATTR, None)}
        files[_MANIFEST] = json.dumps(manifest, indent=1).encode()
        os.makedirs(self.dirname, exist_ok=True)
        name = f"epoch-{epochs:04d}"
        self._sweep()
        with atomic_folder(os.path.join(self.dirname, name)) as temporary:
            for file_name, data in files.items():
                _write_file(os.path.join(temporary, file_name), data)
        write_bytes_atomically(os.path.join(self.dirname, _POINTER),
                               json.dumps({"format": FORMAT_VERSION, "latest": name}).encode())
        for entry in os.listdir(self.dirname):
            if _EPOCH.match(entry) and entry != name:
                shutil.rmtree(os.path.join(self.dirname, entry), ignore_errors=True)

    def _sweep(self) -> None:
        """Remove temporaries of sets whose writer was killed (they are never read)."""
        for entry in os.listdir(self.dirname):
            match = re.match(r"^\.(epoch-\d+)\.partial-", entry)
            if match:
                remove_stale_partials(os.path.join(self.dirname, match.group(1)))

    # skorch's own loaders (``net.load_params(checkpoint=cb)``, ``LoadInitState``) read the latest set, unchecked
    @property
    def f_history_(self) -> str | None:  # noqa: D102
        return os.path.join(self._latest_folder(), "history.json")

    def get_formatted_files(self, net: Any) -> dict[str, str | None]:  # noqa: D102
        folder = self._latest_folder()
        return {key: None if value is None else os.path.join(folder, value) for key, value in self._f_kwargs().items()
                if key != "f_pickle"}

    def _latest_folder(self) -> str:
        return os.path.join(self.dirname, _read_pointer(self.dirname))


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


def _read_pointer(folder: str) -> str:
    pointer = os.path.join(folder, _POINTER)
    if not os.path.isdir(folder):
        raise _fail(folder, "no such folder", "check the path, or train without resuming first")
    if not os.path.isfile(pointer):
        if os.path.isfile(os.path.join(folder, "params.pt")):
            raise _fail(folder, "it lacks latest.json: it holds a checkpoint in the older layout without "
                                "checksums, RNG states or a manifest, which cannot be checked or resumed exactly")
        raise _fail(folder, f"it lacks {_POINTER}, so it holds no complete checkpoint (none was finished, or this "
                            "is not a checkpoint folder)", "train without resuming")
    latest = _read_json(folder, pointer, "pointer").get("latest")
    if not isinstance(latest, str) or not _EPOCH.match(latest):
        raise _fail(folder, f"{_POINTER} names no checkpoint ({latest!r})")
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
    manifest = _read_json(folder, os.path.join(epoch_folder, _MANIFEST), "manifest")
    version = manifest.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _fail(folder, f"its format {version!r} is newer than this sklearn-imgcls reads ({FORMAT_VERSION})",
                    "upgrade sklearn-imgcls")
    checksums = manifest.get("files")
    if not isinstance(checksums, dict) or sorted(checksums) != sorted(_SET):
        raise _fail(folder, f"the manifest of {latest} does not list the files {list(_SET)}")
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
    latest = _read_pointer(folder)
    manifest, contents = _load_verified(folder, latest)
    try:
        history = History(json.loads(contents["history.json"]))
    except (ValueError, TypeError):
        raise _fail(folder, f"{latest}/history.json is not a skorch history") from None
    epochs = manifest.get("epochs")
    if epochs != len(history) or int(_EPOCH.match(latest).group(1)) != epochs:
        raise _fail(folder, f"{latest} holds a history of {len(history)} epochs but its manifest says {epochs!r}")
    current = getattr(net, _FINGERPRINT_ATTR, None)
    _check_fingerprint(folder, manifest.get("fingerprint"), current)
    if not net.initialized_:
        net.initialize()
    try:
        state = torch.load(io.BytesIO(contents[_STATE]), weights_only=True)
        net.load_params(**{key: io.BytesIO(contents[name]) for key, name in
                           (("f_params", "params.pt"), ("f_optimizer", "optimizer.pt"), ("f_criterion", "criterion.pt"))})
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
        from ._core.network import module_device

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
