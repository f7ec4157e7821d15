"""What the ``sklearn-imgcls`` commands do; :mod:`sklearn_imgcls.cli.main` parses and dispatches.

The commands that look at data and saved models live here (``predict``,
``evaluate``, ``export``, ``validate``, ``compare``); the ones that train
(``train``, ``tune``) in :mod:`sklearn_imgcls.cli.train_commands`, re-exported
here; what they read (parameters, datasets, model files) in
:mod:`sklearn_imgcls.cli.inputs`. Models are read in the safe safetensors +
JSON format (:mod:`sklearn_imgcls.cli.model_files`); pickles only with
``allow_pickle=True``.
"""

from __future__ import annotations

import os
from typing import Sequence


from .._core.labels import plain
from .inputs import expand_images, load_data, load_model, parse_params, warn
from .labels_out import add_predictions, print_metrics
from .run_logs import log_evaluation
from .train_commands import INTERRUPTED, checkpoint_callback, dask_client, fit_threads, train_command, tune_command

__all__ = ["INTERRUPTED", "checkpoint_callback", "compare_command", "evaluate_command", "export_command",
           "fit_threads", "parse_params", "predict_command", "train_command", "tune_command", "validate_command"]


def predict_command(model: str, images: Sequence[str], proba: bool = False, out=None,
                    allow_pickle: bool = False, skip_invalid: bool = False, backend: str = "local",
                    scheduler: str | None = None, chunk_size: int = 1024) -> int:
    """Write ``path,prediction`` (and one probability column per class) as CSV on stdout, or to ``out``.

    ``images``: files, folders, CSV/parquet tables with a ``path`` column.
    Streamed in chunks of ``chunk_size`` files by
    :func:`~sklearn_imgcls.batch_predict.predict_files` (``out`` a ``.csv`` or
    ``.parquet`` file written as it goes), here or (``backend="dask"``) on
    the workers of ``scheduler``'s cluster or of a local 2-worker one.
    Unreadable image files stop the command, all named at once; with
    ``skip_invalid`` they are left out of the table and listed on stderr.
    """
    import contextlib

    import pandas as pd

    from ..batch_predict import output_format, predict_files

    output_format(out)  # refuse a bad --out before loading anything
    estimator = load_model(model, allow_pickle)

    def rows(paths, probabilities):  # one chunk's rows; multi-label: the labels joined by ';'
        return add_predictions(pd.DataFrame({"path": paths}), estimator, probabilities, proba)

    cluster = dask_client(scheduler) if backend == "dask" else contextlib.nullcontext()
    with cluster as client:
        run = predict_files(estimator, images, out, chunk_size=chunk_size, rows=rows, client=client,
                            skip_invalid=skip_invalid)
    if run.invalid:
        warn(f"skipped {len(run.invalid)} unreadable image file(s): "
             + ", ".join(f"{path!r} ({reason.rstrip('.')})" for path, reason in run.invalid[:50]))
    return 0


def evaluate_command(model: str, data: str, report: str | None = None, allow_pickle: bool = False,
                     skip_invalid: bool = False, corruptions: str | Sequence[str] | None = None,
                     severities: Sequence[int] | None = None, log: Sequence[str] = ()) -> int:
    """Print the main metrics of ``model`` on ``data``; with ``report`` write the HTML report too.

    With ``corruptions`` (``"all"`` or names) also print the accuracy per
    corruption and severity and the mean corruption accuracy, and add the
    robustness section to the report. Unreadable image files stop the
    command, all named at once; ``skip_invalid`` leaves them out.
    """
    from ..metrics import evaluate

    names = None
    if severities is not None and corruptions is None:
        raise ValueError("--severities sets the severities of --corruptions: add --corruptions (all installed) or "
                         "--corruptions NAME,NAME, or drop --severities.")
    severities = (1, 2, 3, 4, 5) if severities is None else severities
    if corruptions is not None:  # check names and severities before any work, not after the metrics
        from ..robustness_corruptions import check_severities, resolve_corruptions

        names = "all" if corruptions == "all" or list(corruptions) == ["all"] else list(corruptions)
        check_severities(severities, resolve_corruptions(names))
    estimator = load_model(model, allow_pickle)
    X, y, _ = load_data(data, skip_invalid)
    proba = estimator.predict_proba(X)
    metrics = evaluate(estimator, X, y, proba=proba)
    print_metrics(estimator, metrics)  # multi-label: subset accuracy, hamming loss, f1_samples, ... per label
    robustness = None
    if corruptions is not None:
        from ..corruption import corruption_report

        robustness = corruption_report(estimator, X, y, names, severities)
        print("accuracy under corruption:")
        print(robustness.to_string())
    if report:
        from ..report import write_report

        index = write_report(estimator, X, y, report, proba=proba, corruptions=robustness)
        print(f"report written to {index}")
    if log:  # --log: a run with the metrics and the report folder (sklearn_imgcls.cli.run_logs)
        log_evaluation(log, model, data, metrics, report)
    return 0


def export_command(model: str, onnx_path: str, allow_pickle: bool = False) -> int:
    """Write the saved model's network as ONNX (input: float32 NCHW in training units; output: probabilities)."""
    estimator = load_model(model, allow_pickle)
    estimator.to_onnx(onnx_path)
    print(f"wrote {onnx_path}: input 'images' float32 (N, {', '.join(map(str, estimator.image_shape_))}), "
          f"output 'probabilities' (N, {len(estimator.classes_)}) in the order {estimator.classes_.tolist()}")
    return 0


def validate_command(data: str, test: str | None = None) -> int:
    """Print :func:`~sklearn_imgcls.validation_report.validate`'s report on ``data`` (and ``test``).

    ``test`` is any ``DATA``, or a folder of images with or without class subfolders.

    Returns 0 when no issue was found and 1 when issues are listed (so a
    script can stop before training); user errors raise ``ValueError``.
    """
    import pandas as pd

    from ..datasets import load_dataset
    from ..validation_report import validate

    X, y, shape = load_dataset(data)
    X_test = None
    if test is not None and os.path.isdir(test):  # labels are not needed: any folder of images will do
        X_test = expand_images([test])
    elif test is not None:
        X_test = load_dataset(test)[0]
    report = validate(X, y, X_test=X_test, image_shape=shape)
    for key, value in report.summary.items():
        print(f"{key}: {plain(value)}")
    if len(report.issues) == 0:
        print("no issues")
        return 0
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(report.issues.to_string(index=False))
    return 1


def compare_command(data: str, budget: float | None = None, cv: int = 3, seed: int = 0, report: str | None = None,
                    backend: str = "local", scheduler: str | None = None) -> int:
    """Print the auto leaderboard for ``data``; with ``report`` also write its CSV, HTML and plot.

    ``backend="dask"`` runs the candidate x fold fits on the workers of
    ``scheduler``'s Dask cluster, or of a local 2-worker one.
    """
    import contextlib

    import pandas as pd

    from ..datasets import load_dataset
    from ..select import leaderboard

    X, y, shape = load_dataset(data)
    with dask_client(scheduler) if backend == "dask" else contextlib.nullcontext():
        board = leaderboard(X, y, "auto", cv=cv, time_budget=budget, image_shape=shape, random_state=seed,
                            refit=False, verbose=1, backend="dask" if backend == "dask" else None)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(board.round(4).to_string(index=False))
    if report:
        from ..plot import plot_leaderboard

        os.makedirs(report, exist_ok=True)
        board.to_csv(os.path.join(report, "leaderboard.csv"), index=False)
        html = board.round(4).to_html(index=False)
        if (board["status"] == "ok").any():
            plot_leaderboard(board).savefig(os.path.join(report, "leaderboard.png"), dpi=110)
            html += '\n<p><img src="leaderboard.png" alt="score against fit time"></p>'
        with open(os.path.join(report, "leaderboard.html"), "w", encoding="utf-8") as handle:
            handle.write(f"<!doctype html><meta charset='utf-8'><title>Leaderboard</title>\n{html}\n")
        print(f"report written to {report}")
    return 0
