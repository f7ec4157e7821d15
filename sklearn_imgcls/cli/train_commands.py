"""The ``sklearn-imgcls`` commands that train: ``train`` (checkpointed, resumable) and ``tune`` (grid search).

Models are written in the safe safetensors + JSON format
(:mod:`sklearn_imgcls.cli.model_files`); pickles only with ``allow_pickle=True``.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator, Sequence

from .._core.labels import plain
from .inputs import load_data, make_estimator, parse_params, read_grid, save_model
from .run_logs import log_model_file
from .search import fit_search, make_search

__all__ = ["INTERRUPTED", "checkpoint_callback", "dask_client", "fit_threads", "train_command", "tune_command"]

#: exit code of a `train` run interrupted with Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def checkpoint_callback(folder: str) -> Any:
    """The per-epoch checkpoint the ``train`` command attaches: :class:`sklearn_imgcls.checkpoints.TrainingCheckpoint`.

    Each epoch is written atomically into ``folder`` with a checked manifest
    and the RNG states, so ``fit(X, y, resume_from=folder)`` continues exactly.

    Parameters
    ----------
    folder : str
        The checkpoint folder.

    Returns
    -------
    TrainingCheckpoint
    """
    from ..checkpoints import TrainingCheckpoint

    return TrainingCheckpoint(folder)


def train_command(data: str, out: str, kind: str = "cnn", backbone: str | None = None,
                  params: Sequence[str] = (), quiet: bool = False, resume: bool = False,
                  allow_pickle: bool = False, skip_invalid: bool = False, log: Sequence[str] = ()) -> int:
    """Fit an estimator on ``data`` and save it to ``out``.

    ``out`` gets the safe safetensors format; a joblib pickle only when it ends
    in ``.joblib``/``.pkl``/``.pickle`` and ``allow_pickle`` is set. Every
    epoch is checkpointed in ``<out>.checkpoint/``. Ctrl-C ends the epoch loop
    (skorch keeps the weights so far), the model is still saved and the
    checkpoint kept, so ``resume=True`` continues up to ``max_epochs``.
    ``skip_invalid`` leaves out unreadable image files (listed on stderr)
    instead of stopping. ``log`` (``--log`` specs: ``tensorboard:DIR``,
    ``mlflow:URI``) logs the fit (parameters, per-epoch metrics) and then the
    saved model file (an MLflow artifact).

    Returns
    -------
    int
        0, or :data:`INTERRUPTED` when training stopped before ``max_epochs``.
    """
    import shutil

    from .model_files import output_format

    output_format(out, allow_pickle)  # refuse a bad --out before any training
    X, y, shape = load_data(data, skip_invalid)
    settings = parse_params(params)
    if shape is not None:
        settings.setdefault("image_shape", shape)
    settings.setdefault("verbose", 0 if quiet else 2)
    folder = out + ".checkpoint"
    if "callbacks" in settings:
        raise ValueError("callbacks cannot be given on the command line; use the Python API for custom callbacks.")
    settings["callbacks"] = [checkpoint_callback(folder)]
    if log:
        if "log" in settings:
            raise ValueError("give the trackers with --log or with --param log=..., not both.")
        settings["log"] = list(log)
    estimator = make_estimator(kind, backbone, settings)
    if resume and not os.path.isdir(folder):
        raise ValueError(f"--resume found no checkpoint folder {folder!r}; train without --resume first.")
    estimator.fit(X, y, resume_from=folder if resume else None)
    save_model(estimator, out, allow_pickle)
    log_model_file(estimator, out)  # the runs that logged the fit (--log or --param log=) get the model file
    epochs = len(estimator.history_)
    print(f"trained {type(estimator).__name__}({estimator.backbone_}) on {len(y)} images for {epochs} epoch(s); "
          f"saved to {out}")
    if epochs < estimator.max_epochs_ and not estimator.early_stopping:
        print(f"stopped before max_epochs={estimator.max_epochs_}: checkpoint kept in {folder}; add --resume to continue")
        return INTERRUPTED  # the model is saved, but the run did not finish: scripts must be able to tell
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def fit_threads(threads: int | None, n_jobs: int | None) -> int | None:
    """Torch threads for each of ``n_jobs`` parallel fits sharing ``threads``: ``threads // n_jobs``, at least 1."""
    import joblib

    if threads is None:
        return None
    return max(1, threads // joblib.effective_n_jobs(n_jobs))


def tune_command(data: str, grid: str, kind: str = "cnn", params: Sequence[str] = (), cv: int = 3,
                 n_jobs: int | None = None, backend: str = "loky", scheduler: str | None = None,
                 out: str | None = None, seed: int = 0, threads: int | None = None,
                 allow_pickle: bool = False, search: str = "grid", min_epochs: int | None = None,
                 max_epochs: int | None = None) -> int:
    """Search ``grid`` with cross-validation, on joblib's loky processes or a Dask cluster.

    ``search="grid"`` tries every combination (``GridSearchCV``);
    ``search="halving"`` is successive halving over epochs
    (``HalvingRandomSearchCV(resource="max_epochs")``): every combination
    trains ``min_epochs``, the best third goes on with three times as many
    epochs, and so on up to ``max_epochs``. With ``threads``, each parallel fit
    uses ``threads // n_jobs`` torch threads (the final refit all
    ``threads``); without, loky's own split of the cores applies.
    """
    import contextlib

    import joblib
    from .labels_out import search_settings
    from .model_files import output_format

    if out:
        output_format(out, allow_pickle)  # refuse a bad --out before the search
    X, y, shape = load_data(data)
    settings = parse_params(params)
    if shape is not None:
        settings.setdefault("image_shape", shape)
    settings.setdefault("random_state", seed)
    estimator = make_estimator(kind, None, settings)
    space = read_grid(grid)
    unknown = sorted(set(space) - set(estimator.get_params()))
    if unknown:
        raise ValueError(f"The grid names unknown parameter(s) {unknown}; {type(estimator).__name__} takes "
                         f"{sorted(estimator.get_params())}.")
    folds, scoring, y = search_settings(y, cv, seed)  # multi-label: shuffled KFold, f1_samples, a 0/1 frame
    search = make_search(search, estimator, space, folds, n_jobs, seed, min_epochs, max_epochs, scoring)
    per_fit = fit_threads(threads, n_jobs)
    if backend == "dask":
        from ..cluster import match_worker_threads

        with dask_client(scheduler) as client:
            match_worker_threads(client, per_fit)
            with joblib.parallel_backend("dask", scatter=[X, y]):  # the data go to each worker once
                fit_search(search, X, y)
    elif backend == "loky":
        parallel = per_fit is not None and joblib.effective_n_jobs(n_jobs) > 1
        limit = joblib.parallel_config("loky", inner_max_num_threads=per_fit) if parallel else contextlib.nullcontext()
        with limit:
            fit_search(search, X, y)
    else:
        raise ValueError(f"--backend must be 'loky' or 'dask', got {backend!r}.")
    scored = "" if scoring is None else " (f1_samples: several labels per image)"
    print(f"best score{scored} {search.best_score_:.4f} with {json.dumps(plain(search.best_params_), default=str)}")
    import pandas as pd

    results = pd.DataFrame(search.cv_results_)
    columns = ["rank_test_score", "mean_test_score", "std_test_score", "mean_fit_time", "params"]
    if "n_resources" in results:  # halving: rank within the last round; show the epochs each row trained
        results = results.rename(columns={"n_resources": "epochs"}).sort_values("epochs", ascending=False)
        columns.insert(0, "epochs")
    print(results.sort_values("rank_test_score", kind="stable")[columns].head(10).to_string(index=False))
    if out:
        save_model(search.best_estimator_, out, allow_pickle)
        print(f"best model saved to {out}")
    return 0


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client for ``--backend dask``: of ``scheduler``'s cluster, or of a local 2-worker one (1 thread each).

    The client, and the local cluster, are closed when the block ends.

    Raises
    ------
    ValueError
        dask.distributed is not installed (names the extra).
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--backend dask needs dask.distributed: pip install 'sklearn-imgcls[dask]'.") from None
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client
