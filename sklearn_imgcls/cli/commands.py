"""What the ``sklearn-imgcls`` subcommands do; :mod:`sklearn_imgcls.cli.main` parses and dispatches.

Models are written and read in the safe safetensors + JSON format
(:mod:`sklearn_imgcls.cli.model_files`); pickles only with ``allow_pickle=True``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

import numpy as np

from .._core.labels import plain

__all__ = ["checkpoint_callback", "compare_command", "evaluate_command", "export_command", "parse_params",
           "fit_threads", "predict_command", "train_command", "tune_command", "validate_command"]

ESTIMATORS = {"cnn": "CNNClassifier", "transfer": "TransferClassifier"}
_TUPLE_PARAMS = {"image_shape", "input_size"}


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """Turn ``["max_epochs=5", "augment=[\\"flip_h\\"]", "backbone=bn_cnn"]`` into a dict.

    Values are read as JSON when they parse (numbers, lists, ``null``,
    ``true``), else kept as strings; lists become tuples for shape parameters.
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
        params[key] = tuple(value) if key in _TUPLE_PARAMS and isinstance(value, list) else value
    return params


def _estimator(kind: str, backbone: str | None, params: dict[str, Any]):
    from .. import CNNClassifier, TransferClassifier

    if kind not in ESTIMATORS:
        raise ValueError(f"--estimator must be one of {sorted(ESTIMATORS)}, got {kind!r}.")
    cls = CNNClassifier if kind == "cnn" else TransferClassifier
    estimator = cls() if backbone is None else cls(backbone=backbone)
    unknown = sorted(set(params) - set(estimator.get_params()))
    if unknown:
        raise ValueError(f"Unknown parameter(s) {unknown} for {cls.__name__}; it takes {sorted(estimator.get_params())}.")
    return estimator.set_params(**params)


def _warn(message: str) -> None:
    print(f"sklearn-imgcls: warning: {message}", file=sys.stderr)


def _load(path: str, allow_pickle: bool = False):
    from .model_files import load_model_file

    return load_model_file(path, allow_pickle, warn=_warn)


def _save(estimator: Any, path: str, allow_pickle: bool = False) -> None:
    from .model_files import save_model_file

    if save_model_file(estimator, path, allow_pickle) == "pickle":
        _warn(f"wrote {path!r} as a joblib pickle (asked for by its suffix and --allow-pickle); loading it runs "
              f"code, so share a .safetensors model instead.")


def checkpoint_callback(folder: str):
    """The per-epoch checkpoint the ``train`` command attaches: :class:`sklearn_imgcls.checkpoints.TrainingCheckpoint`.

    Each epoch is written atomically into ``folder`` with a checked manifest
    and the RNG states, so ``fit(X, y, resume_from=folder)`` continues exactly.
    """
    from ..checkpoints import TrainingCheckpoint

    return TrainingCheckpoint(folder)


def train_command(data: str, out: str, kind: str = "cnn", backbone: str | None = None,
                  params: Sequence[str] = (), quiet: bool = False, resume: bool = False,
                  allow_pickle: bool = False, skip_invalid: bool = False) -> int:
    """Fit an estimator on ``data`` and save it to ``out``.

    ``out`` gets the safe safetensors format; a joblib pickle only when it ends
    in ``.joblib``/``.pkl``/``.pickle`` and ``allow_pickle`` is set. Every
    epoch is checkpointed in ``<out>.checkpoint/``. Ctrl-C ends the epoch loop
    (skorch keeps the weights so far), the model is still saved and the
    checkpoint kept, so ``resume=True`` continues up to ``max_epochs``.
    ``skip_invalid`` leaves out unreadable image files (listed on stderr)
    instead of stopping.
    """
    import shutil

    from .model_files import output_format

    output_format(out, allow_pickle)  # refuse a bad --out before any training
    X, y, shape = _load_data(data, skip_invalid)
    settings = parse_params(params)
    if shape is not None:
        settings.setdefault("image_shape", shape)
    settings.setdefault("verbose", 0 if quiet else 2)
    folder = out + ".checkpoint"
    if "callbacks" in settings:
        raise ValueError("callbacks cannot be given on the command line; use the Python API for custom callbacks.")
    settings["callbacks"] = [checkpoint_callback(folder)]
    estimator = _estimator(kind, backbone, settings)
    if resume and not os.path.isdir(folder):
        raise ValueError(f"--resume found no checkpoint folder {folder!r}; train without --resume first.")
    estimator.fit(X, y, resume_from=folder if resume else None)
    _save(estimator, out, allow_pickle)
    epochs = len(estimator.history_)
    print(f"trained {type(estimator).__name__}({estimator._param('backbone')}) on {len(y)} images for {epochs} epoch(s); "
          f"saved to {out}")
    if epochs < estimator._param("max_epochs") and not estimator.early_stopping:
        print(f"stopped before max_epochs={estimator._param('max_epochs')}: checkpoint kept in {folder}; add --resume to continue")
        return INTERRUPTED  # the model is saved, but the run did not finish: scripts must be able to tell
    shutil.rmtree(folder, ignore_errors=True)
    return 0


#: exit code of a `train` run interrupted with Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130

_SHOWN = 50  # bad files named in one error line; `validate` lists them all


def _invalid_report(bad: Sequence[tuple[str, str]]) -> str:
    shown = ", ".join(f"{path!r} ({reason.rstrip('.')})" for path, reason in bad[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    return f"{len(bad)} unreadable image file(s): {shown}{more}"


def _invalid_paths(paths: Sequence[str], skip_invalid: bool) -> set[str]:
    """The undecodable files among ``paths``: an error naming them all, or (``skip_invalid``) a note on stderr."""
    from .._core.images import find_invalid_images

    bad = find_invalid_images(list(paths))
    if bad and len(bad) == len(paths):
        raise ValueError(f"None of the {len(paths)} image file(s) can be decoded: {_invalid_report(bad)}.")
    if bad and not skip_invalid:
        raise ValueError(f"{_invalid_report(bad)}; fix or remove them, or add --skip-invalid to leave them out.")
    if bad:
        _warn(f"skipped {_invalid_report(bad)}.")
    return {path for path, _ in bad}


def _load_data(spec: str, skip_invalid: bool = False):
    """``load_dataset(spec)``, with every undecodable image file named at once, or left out with ``skip_invalid``."""
    from ..datasets import load_dataset

    X, y, shape = load_dataset(spec)
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":  # file paths, decoded lazily: check them now
        bad = _invalid_paths(X.tolist(), skip_invalid)
        if bad:
            keep = np.array([path not in bad for path in X.tolist()], dtype=bool)
            X, y = X[keep], y[keep]
    return X, y, shape


def _expand_images(items: Sequence[str]) -> list[str]:
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


def predict_command(model: str, images: Sequence[str], proba: bool = False, out=None,
                    allow_pickle: bool = False, skip_invalid: bool = False) -> int:
    """Print ``path,prediction`` (and one probability column per class) as CSV.

    Unreadable image files stop the command, all named at once; with
    ``skip_invalid`` they are left out of the table and listed on stderr.
    """
    import pandas as pd

    estimator = _load(model, allow_pickle)
    paths = _expand_images(images)
    bad = _invalid_paths(paths, skip_invalid)
    paths = [p for p in paths if p not in bad]
    table = pd.DataFrame({"path": paths})
    probabilities = estimator.predict_proba(paths)
    table["prediction"] = estimator.classes_[probabilities.argmax(axis=1)]
    if proba:
        for i, label in enumerate(estimator.classes_):
            table[f"proba_{label}"] = np.round(probabilities[:, i], 6)
    table.to_csv(out or sys.stdout, index=False)
    return 0


def evaluate_command(model: str, data: str, report: str | None = None, allow_pickle: bool = False,
                     skip_invalid: bool = False) -> int:
    """Print the main metrics of ``model`` on ``data``; with ``report`` write the HTML report too.

    Unreadable image files stop the command, all named at once; ``skip_invalid`` leaves them out.
    """
    from ..metrics import evaluate

    estimator = _load(model, allow_pickle)
    X, y, _ = _load_data(data, skip_invalid)
    proba = estimator.predict_proba(X)
    metrics = evaluate(estimator, X, y, proba=proba)
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc_ovr"):
        print(f"{name:>18}: {metrics[name]:.4f}")
    print(metrics["per_class"].round(3).to_string())
    if report:
        from ..report import write_report

        index = write_report(estimator, X, y, report)
        print(f"report written to {index}")
    return 0


def _read_grid(path: str) -> dict[str, list]:
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
    return {k: [tuple(v) if k in _TUPLE_PARAMS and isinstance(v, list) else v for v in values] for k, values in grid.items()}


def fit_threads(threads: int | None, n_jobs: int | None) -> int | None:
    """Torch threads for each of ``n_jobs`` parallel fits sharing ``threads``: ``threads // n_jobs``, at least 1."""
    import joblib

    if threads is None:
        return None
    return max(1, threads // joblib.effective_n_jobs(n_jobs))


def tune_command(data: str, grid: str, kind: str = "cnn", params: Sequence[str] = (), cv: int = 3,
                 n_jobs: int | None = None, backend: str = "loky", scheduler: str | None = None,
                 out: str | None = None, seed: int = 0, threads: int | None = None,
                 allow_pickle: bool = False) -> int:
    """Grid-search ``grid`` with cross-validation, on joblib's loky processes or a Dask cluster.

    With ``threads``, each parallel fit uses ``threads // n_jobs`` torch
    threads (the final refit all ``threads``); without, loky's own split of the
    cores applies.
    """
    import contextlib

    import joblib
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from .model_files import output_format

    if out:
        output_format(out, allow_pickle)  # refuse a bad --out before the search
    X, y, shape = _load_data(data)
    settings = parse_params(params)
    if shape is not None:
        settings.setdefault("image_shape", shape)
    settings.setdefault("random_state", seed)
    estimator = _estimator(kind, None, settings)
    space = _read_grid(grid)
    unknown = sorted(set(space) - set(estimator.get_params()))
    if unknown:
        raise ValueError(f"The grid names unknown parameter(s) {unknown}; {type(estimator).__name__} takes "
                         f"{sorted(estimator.get_params())}.")
    search = GridSearchCV(estimator, space, cv=StratifiedKFold(cv, shuffle=True, random_state=seed), n_jobs=n_jobs)
    per_fit = fit_threads(threads, n_jobs)
    if backend == "dask":
        client, cluster = _dask_client(scheduler)
        try:
            if per_fit is not None:
                import torch

                client.run(torch.set_num_threads, per_fit)
            with joblib.parallel_backend("dask"):
                search.fit(X, y)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif backend == "loky":
        parallel = per_fit is not None and joblib.effective_n_jobs(n_jobs) > 1
        limit = joblib.parallel_config("loky", inner_max_num_threads=per_fit) if parallel else contextlib.nullcontext()
        with limit:
            search.fit(X, y)
    else:
        raise ValueError(f"--backend must be 'loky' or 'dask', got {backend!r}.")
    print(f"best score {search.best_score_:.4f} with {json.dumps(plain(search.best_params_), default=str)}")
    import pandas as pd

    results = pd.DataFrame(search.cv_results_)
    columns = ["rank_test_score", "mean_test_score", "std_test_score", "mean_fit_time", "params"]
    print(results.sort_values("rank_test_score")[columns].head(10).to_string(index=False))
    if out:
        _save(search.best_estimator_, out, allow_pickle)
        print(f"best model saved to {out}")
    return 0


def _dask_client(scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--backend dask needs dask.distributed: pip install 'sklearn-imgcls[dask]'.") from None
    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def export_command(model: str, onnx_path: str, allow_pickle: bool = False) -> int:
    """Write the saved model's network as ONNX (input: float32 NCHW in training units; output: probabilities)."""
    estimator = _load(model, allow_pickle)
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
        X_test = _expand_images([test])
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


def compare_command(data: str, budget: float | None = None, cv: int = 3, seed: int = 0, report: str | None = None) -> int:
    """Print the auto leaderboard for ``data``; with ``report`` also write its CSV, HTML and plot."""
    import pandas as pd

    from ..datasets import load_dataset
    from ..select import leaderboard

    X, y, shape = load_dataset(data)
    board = leaderboard(X, y, "auto", cv=cv, time_budget=budget, image_shape=shape,
                        random_state=seed, refit=False, verbose=1)
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
