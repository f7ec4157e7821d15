"""Experiment logging of a fit (``log=``) through skorch's logger callbacks.

``_initialized_net`` asks :func:`logging_callbacks` for the callbacks that
log the coming fit (see :mod:`sklearn_imgcls._core.tracker_callbacks`);
:func:`logged_runs` tells afterwards where a fitted estimator's last fit was
logged, so more can be added to the same runs (the command line adds the
saved model file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tracker_callbacks import MlflowRun, TensorBoardRun
from .trackers import LogTarget, open_mlflow, parse_log, run_name

__all__ = ["LoggedRun", "logged_runs", "logging_callbacks", "resolved_settings"]

#: the validated settings that are recorded as what the fit resolved (presets included), as ``<name>_``
_RESOLVED = ("lr", "batch_size", "max_epochs", "lr_schedule", "precision", "device", "validation_fraction",
             "early_stopping")


@dataclass(frozen=True)
class LoggedRun:
    """Where a fit was logged: ``target`` and its ``run`` (the TensorBoard folder, or the MLflow run id)."""

    target: LogTarget
    run: str


def resolved_settings(settings: dict | None) -> dict[str, Any]:
    """What ``fit`` resolved from the validated ``settings``, named like the fitted attributes (``lr_``, ...)."""
    if not settings:
        return {}
    values = {f"{name}_": settings[name] for name in _RESOLVED if name in settings}
    if "device_" in values:
        values["device_"] = str(values["device_"])
    augment = settings.get("augment")
    if augment is not None:
        values["augment_"] = [name for name, _ in getattr(augment, "items", [])]
    return values


def logging_callbacks(log: Any, estimator: Any, settings: dict | None = None) -> list:
    """The skorch callbacks that log ``estimator``'s fit to the trackers named by ``log`` (None: none).

    Parameters
    ----------
    log : str, list of str or None
        The estimator's ``log`` parameter (forms: :data:`~sklearn_imgcls._core.trackers.LOG_FORMS`).
    estimator : BaseImageClassifier
        The estimator about to fit: its ``get_params(deep=False)`` are logged.
    settings : dict or None
        The validated settings of this fit: what presets resolved is logged too.

    Returns
    -------
    list of (str, skorch.callbacks.Callback)

    Raises
    ------
    ValueError
        A spec is not one of the forms (the message lists them).
    ImportError
        A tracker is not installed (the message names the pip extra).
    """
    targets = parse_log(log)
    accelerator = getattr(estimator, "accelerator", None)
    if not targets or not getattr(accelerator, "is_main_process", True):  # several processes: one run, rank 0's
        return []
    params = {**estimator.get_params(deep=False), **resolved_settings(settings)}
    kind = type(estimator).__name__
    callbacks, counts = [], {}
    for target in targets:
        counts[target.kind] = counts.get(target.kind, 0) + 1
        name = f"log_{target.kind}" + (f"_{counts[target.kind]}" if counts[target.kind] > 1 else "")
        if target.kind == "tensorboard":
            callbacks.append((name, TensorBoardRun(target, run_name(kind), params)))
        else:
            open_mlflow(target)  # a store MLflow refuses fails here, before training
            callbacks.append((name, MlflowRun(target, run_name(kind), params, {"sklearn_imgcls.estimator": kind})))
    return callbacks


def logged_runs(estimator: Any) -> list[LoggedRun]:
    """Where ``estimator``'s last fit was logged (empty when it was not, or it is not fitted)."""
    runs = []
    for _, callback in getattr(getattr(estimator, "net_", None), "callbacks_", None) or []:
        if isinstance(callback, TensorBoardRun) and getattr(callback, "log_dir_", None):
            runs.append(LoggedRun(callback.target, callback.log_dir_))
        elif isinstance(callback, MlflowRun) and getattr(callback, "run_id_", None):
            runs.append(LoggedRun(callback.target, callback.run_id_))
    return runs
