"""skorch's TensorBoard and MLflow callbacks, opened per training run and closed (and dropped) after it.

:class:`TensorBoardRun` and :class:`MlflowRun` extend
:class:`skorch.callbacks.TensorBoard` and :class:`skorch.callbacks.MlflowLogger`:
each training call (``fit``, or the ``partial_fit`` of a resumed fit) opens
its own run (a fresh TensorBoard folder, a new MLflow run), logs the
estimator's parameters, each epoch's metrics and, at the end, the epochs run
and the seconds taken; then the writer is closed and the MLflow client
dropped, so a fitted estimator pickles without them. A metric that a
callback after the logger adds to an epoch (``scoring=``) is logged when the
next epoch begins or training ends.
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
import time
from typing import Any

from skorch.callbacks import MlflowLogger, TensorBoard
from skorch.callbacks.logging import filter_log_keys

from .trackers import LogTarget, flat_params, start_mlflow_run, tensorboard_writer

__all__ = ["MlflowRun", "TensorBoardRun", "tensorboard_tag"]

_LIVE = ("writer", "client_", "run_")  # what never goes into a pickle


def tensorboard_tag(key: str) -> str:
    """The TensorBoard tag of a history key: ``loss/train_loss``, ``time/dur``, ``metrics/valid_acc``."""
    group = "loss" if key.endswith("loss") else "time" if key == "dur" else "metrics"
    return f"{group}/{key}"


def _numbers(row: dict, keys: Any) -> dict[str, float]:
    return {key: float(row[key]) for key in keys
            if isinstance(row.get(key), numbers.Number) and not isinstance(row.get(key), bool)}


class _EpochRows:
    """Log each epoch's numbers once: at the epoch's end, and what later callbacks added, one step later."""

    def _begin_rows(self, net: Any) -> None:
        self.first_row_ = len(net.history)  # rows restored from a checkpoint belong to an earlier run
        self.written_: set[str] = set()
        self.started_ = time.monotonic()
        self.run_params_ = dict(self.params)
        if self.first_row_:
            self.run_params_["resumed_after_epoch"] = self.first_row_

    def _write_new(self, row: dict) -> None:
        values = _numbers(row, [key for key in filter_log_keys(row.keys(), self.keys_ignored_)
                                if key not in self.written_])
        if values:
            self._write(values, int(row["epoch"]))
        self.written_ |= set(values)

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        if len(net.history) - 1 > self.first_row_:  # the previous epoch of this run is complete now
            self._write_new(net.history[-2])
        self.written_ = set()

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        self._write_new(net.history[-1])

    def _finish_rows(self, net: Any) -> dict[str, float]:
        """Log the last epoch's remaining numbers; returns the summary (epochs, fit_seconds, the last epoch's)."""
        summary = {"epochs": float(len(net.history)), "fit_seconds": round(time.monotonic() - self.started_, 3)}
        if len(net.history) > self.first_row_:
            last = net.history[-1]
            self._write_new(last)
            summary.update(_numbers(last, filter_log_keys(last.keys(), self.keys_ignored_)))
        return summary

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in _LIVE:
            if name in state:
                state[name] = None
        return state


class TensorBoardRun(_EpochRows, TensorBoard):
    """skorch's TensorBoard callback writing each run into a new folder ``<target.location>/<name>``.

    Parameters
    ----------
    target : LogTarget
        The TensorBoard folder.
    name : str
        The run's subfolder (unique: see :func:`~sklearn_imgcls._core.trackers.run_name`).
    params : dict
        The parameters to record (text table ``params`` and the HParams dashboard).
    keys_ignored : str, list of str or None
        History keys not to log (skorch's meaning).
    """

    def __init__(self, target: LogTarget, name: str, params: dict, keys_ignored: Any = None) -> None:
        super().__init__(writer=None, close_after_train=True, keys_ignored=keys_ignored, key_mapper=tensorboard_tag)
        self.target = target
        self.name = name
        self.params = params

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self._begin_rows(net)
        self.log_dir_ = os.path.join(self.target.location, self.name)
        self.writer = tensorboard_writer(self.target, self.name)
        rows = "\n".join(f"| {key} | `{value}` |" for key, value in flat_params(self.run_params_).items())
        self.writer.add_text("params", "| parameter | value |\n|---|---|\n" + rows)
        self.started_ = time.monotonic()

    def _write(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(self.key_mapper(key), value, global_step=step)

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        from torch.utils.tensorboard.summary import hparams

        try:
            summary = self._finish_rows(net)
            step = int(summary["epochs"])
            metrics = {f"final/{key}": value for key, value in summary.items()}
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, global_step=step)
            hparam_values = {key: "None" if value is None else value for key, value in flat_params(self.run_params_).items()}
            for event in hparams(hparam_values, metrics):  # the HParams dashboard: parameters against final metrics
                self.writer.file_writer.add_summary(event)
            super().on_train_end(net, **kwargs)  # closes the writer
        finally:
            self.writer = None


class MlflowRun(_EpochRows, MlflowLogger):
    """skorch's MlflowLogger, creating one MLflow run per training call in ``target``'s experiment.

    Parameters
    ----------
    target : LogTarget
        The tracking URI and experiment.
    name : str
        The run's name.
    params : dict
        The parameters to record (MLflow params).
    tags : dict
        MLflow tags of the run.
    keys_ignored : str, list of str or None
        History keys not to log (skorch's meaning).
    """

    def __init__(self, target: LogTarget, name: str, params: dict, tags: dict | None = None,
                 keys_ignored: Any = None) -> None:
        super().__init__(run=None, client=None, create_artifact=False, terminate_after_train=True,
                         keys_ignored=keys_ignored)
        self.target = target
        self.name = name
        self.params = params
        self.tags = tags

    def initialize(self) -> "MlflowRun":
        """skorch's set-up without opening anything: the run starts with training."""
        keys_ignored = [self.keys_ignored] if isinstance(self.keys_ignored, str) else self.keys_ignored
        self.keys_ignored_ = set(keys_ignored or []) | {"batches"}
        self.batch_suffix_ = self.epoch_suffix_ = ""
        self.client_ = self.run_ = None
        return self

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        super().on_train_begin(net, **kwargs)
        self._begin_rows(net)
        self.client_, self.run_id_ = start_mlflow_run(self.target, self.name, self.run_params_, dict(self.tags or {}))
        self.run_ = self.client_.get_run(self.run_id_)
        self.started_ = time.monotonic()

    def _write(self, values: dict[str, float], step: int) -> None:
        self._iteration_log(values, self.epoch_suffix_, step)

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        try:
            summary = self._finish_rows(net)
            for key in ("epochs", "fit_seconds"):
                self.client_.log_metric(self.run_id_, key, summary[key])
            with tempfile.TemporaryDirectory(prefix="sklearn_imgcls_mlflow_") as folder:
                path = os.path.join(folder, "history.json")
                with open(path, "w", encoding="utf-8") as handle:
                    json.dump(net.history.to_list(), handle, default=str)
                self.client_.log_artifact(self.run_id_, path)
            super().on_train_end(net, **kwargs)  # marks the run finished
        finally:
            self.client_ = self.run_ = None
