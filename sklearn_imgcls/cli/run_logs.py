"""What ``--log`` adds to experiment runs from the command line.

``train`` logs the fit through the estimator's ``log`` parameter (parameters
and per-epoch metrics), then :func:`log_model_file` adds the saved model
file to the same runs (an MLflow artifact; a TensorBoard text entry naming
it). ``evaluate`` opens a run of its own with :func:`log_evaluation`: the
metrics, the per-class tables and the HTML report folder (MLflow artifacts;
TensorBoard scalars and a text summary).
"""

from __future__ import annotations

import numbers
import os
import time
from typing import Any, Sequence

from .._core.run_logging import logged_runs
from .._core.trackers import open_mlflow, parse_log, run_name, start_mlflow_run, tensorboard_writer

__all__ = ["log_evaluation", "log_model_file"]


def _say(text: str) -> None:
    print(text, flush=True)


def log_model_file(estimator: Any, path: str) -> None:
    """Add the model file at ``path`` to the runs that logged ``estimator``'s fit (none: nothing)."""
    for run in logged_runs(estimator):
        if run.target.kind == "mlflow":
            client, _ = open_mlflow(run.target)
            client.log_artifact(run.run, path)
            _say(f"logged to MLflow run {run.run} ({run.target.describe()}), model file included")
        else:
            from torch.utils.tensorboard import SummaryWriter

            with SummaryWriter(log_dir=run.run) as writer:  # a second event file in the run's folder
                writer.add_text("model_file", f"saved to `{os.path.abspath(path)}`")
            _say(f"logged to TensorBoard folder {run.run}")


def _split(metrics: dict) -> tuple[dict[str, float], dict[str, Any]]:
    """The scalar metrics and the tables (DataFrames) of an evaluation."""
    scalars = {key: float(value) for key, value in metrics.items()
               if isinstance(value, numbers.Number) and not isinstance(value, bool) and key != "k"}
    tables = {key: value for key, value in metrics.items() if hasattr(value, "to_csv")}
    return scalars, tables


def log_evaluation(log: str | Sequence[str], model: str, data: str, metrics: dict, report: str | None = None) -> None:
    """Log an evaluation of ``model`` on ``data`` as a new run of each tracker in ``log``.

    Parameters
    ----------
    log : str or sequence of str
        ``--log`` specs (``tensorboard:DIR``, ``mlflow:URI``).
    model, data : str
        What was evaluated (recorded as parameters).
    metrics : dict
        :func:`sklearn_imgcls.metrics.evaluate`'s result: numbers become
        metrics, tables (``per_class``, ``confusion_matrix``) CSV artifacts
        (MLflow) or a text summary (TensorBoard).
    report : str or None
        The HTML report folder, logged as the MLflow artifact folder ``report``.
    """
    targets = parse_log(list(log) if not isinstance(log, str) else log)
    scalars, tables = _split(metrics)
    params = {"model": os.path.abspath(model), "data": data, "top_k": metrics.get("k")}
    for target in targets:
        if target.kind == "mlflow":
            from mlflow.entities import Metric

            client, run_id = start_mlflow_run(target, run_name("evaluate"), params,
                                              {"sklearn_imgcls.command": "evaluate"})
            stamp = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(key, value, stamp, 0) for key, value in scalars.items()])
            for key, table in tables.items():
                client.log_text(run_id, table.to_csv(), f"{key}.csv")
            if report:
                client.log_artifacts(run_id, report, "report")
            client.set_terminated(run_id)
            _say(f"logged the evaluation to MLflow run {run_id} ({target.describe()})")
        else:
            name = run_name("evaluate")
            writer = tensorboard_writer(target, name)
            try:
                for key, value in scalars.items():
                    writer.add_scalar(f"evaluate/{key}", value, global_step=0)
                lines = [f"model `{params['model']}` on `{data}`", "", "| metric | value |", "|---|---|"]
                lines += [f"| {key} | {value:.4f} |" for key, value in scalars.items()]
                for key, table in tables.items():
                    lines += ["", f"**{key}**", "", table.round(4).to_markdown()]
                if report:
                    lines += ["", f"HTML report: `{os.path.abspath(report)}`"]
                writer.add_text("evaluation", "\n".join(lines))
            finally:
                writer.close()
            _say(f"logged the evaluation to TensorBoard folder {os.path.join(target.location, name)}")
