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
parameters or other data. The reader lives in :mod:`sklearn_imgcls._core.resume`
(the estimator's ``fit`` uses it); it is re-exported here. skorch's own
loaders (``net.load_params(checkpoint=callback)``,
:class:`~skorch.callbacks.LoadInitState`) also read the latest set, unchecked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from typing import Any

import torch
from skorch.callbacks import Checkpoint, PrintLog

from ._core.atomic import atomic_folder, remove_stale_partials, write_bytes_atomically
from ._core.resume import (
    EPOCH_FOLDER,
    FORMAT_VERSION,
    MANIFEST_FILE,
    POINTER_FILE,
    SKORCH_FILES,
    STATE_FILE,
    describe_training,
    latest_set,
    random_state_of,
    restore_checkpoint,
    training_fingerprint,
    training_fingerprint_of,
)

__all__ = ["FORMAT_VERSION", "TrainingCheckpoint", "describe_training", "restore_checkpoint", "training_fingerprint"]

_PARTIAL = re.compile(r"^\.(epoch-\d+)\.partial-")


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
        files = {}
        for key, name in SKORCH_FILES:  # on every process: under Accelerate, save_params synchronises them
            buffer = _Buffer()
            net.save_params(**{key: buffer})
            files[name] = buffer.getvalue()
        accelerator = getattr(net, "accelerator", None)
        if accelerator is not None and not getattr(accelerator, "is_main_process", True):
            return  # one writer per run: the other accelerate processes hold the same weights
        try:
            files["history.json"] = json.dumps(net.history.to_list(), default=_json_default).encode()
        except TypeError as exc:
            raise ValueError(f"Cannot checkpoint into {self.dirname!r}: {exc}; record plain numbers in it.") from None
        buffer = io.BytesIO()
        torch.save(random_state_of(net), buffer)
        files[STATE_FILE] = buffer.getvalue()
        epochs = len(net.history)
        manifest = {"format": FORMAT_VERSION, "epochs": epochs, "max_epochs": int(net.max_epochs),
                    "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
                    "fingerprint": training_fingerprint_of(net)}
        files[MANIFEST_FILE] = json.dumps(manifest, indent=1).encode()
        os.makedirs(self.dirname, exist_ok=True)
        name = f"epoch-{epochs:04d}"
        self._sweep()
        with atomic_folder(os.path.join(self.dirname, name)) as temporary:
            for file_name, data in files.items():
                _write_file(os.path.join(temporary, file_name), data)
        write_bytes_atomically(os.path.join(self.dirname, POINTER_FILE),
                               json.dumps({"format": FORMAT_VERSION, "latest": name}).encode())
        for entry in os.listdir(self.dirname):
            if EPOCH_FOLDER.match(entry) and entry != name:
                shutil.rmtree(os.path.join(self.dirname, entry), ignore_errors=True)

    def _sweep(self) -> None:
        """Remove temporaries of sets whose writer was killed (they are never read)."""
        for entry in os.listdir(self.dirname):
            match = _PARTIAL.match(entry)
            if match:
                remove_stale_partials(os.path.join(self.dirname, match.group(1)))

    # skorch's own loaders (``net.load_params(checkpoint=cb)``, ``LoadInitState``) read the latest set, unchecked
    @property
    def f_history_(self) -> str | None:  # noqa: D102
        return os.path.join(self._latest_folder(), "history.json")

    def get_formatted_files(self, net: Any) -> dict[str, str | None]:  # noqa: D102
        folder = self._latest_folder()
        return {key: os.path.join(folder, name) for key, name in (*SKORCH_FILES, ("f_history", "history.json"))}

    def _latest_folder(self) -> str:
        return os.path.join(self.dirname, latest_set(self.dirname))


