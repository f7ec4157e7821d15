"""Searches over image *files* in parallel processes: loky (GridSearchCV(n_jobs=2)) and Dask workers.

Inside a loky worker the default multiprocessing context is loky's, and Dask's
worker processes are daemonic; both used to break the DataLoader that decodes
files in worker processes (issue #14, item 0).
"""

from __future__ import annotations

import multiprocessing

import joblib
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.loader_workers import make_loader, resolve_workers, worker_context


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp("digit_pngs")
    paths = []
    for i in range(60):
        path = folder / f"{i}.png"
        Image.fromarray((X[i].reshape(8, 8) * 15).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths, y[:60] % 2


def _search() -> GridSearchCV:
    # num_workers="auto" asks for DataLoader workers: the case that failed inside joblib workers
    estimator = CNNClassifier(preset="fast", max_epochs=1, batch_size=16, num_workers="auto", random_state=0)
    return GridSearchCV(estimator, {"lr": [1e-3, 3e-3]}, cv=2, n_jobs=2, error_score="raise")


def test_grid_search_over_files_with_loky_workers(digit_files):
    paths, y = digit_files
    search = _search().fit(paths, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.predict(paths[:5]).shape == (5,)


def test_grid_search_over_files_on_dask_workers(digit_files):
    from dask import distributed  # the test extra installs it: a missing dask fails here, never skips

    paths, y = digit_files
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        with joblib.parallel_backend("dask"):
            search = _search().fit(paths, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_loader_workers_use_an_explicit_context_and_none_in_daemons(monkeypatch, digit_files):
    paths, _ = digit_files
    assert worker_context().get_start_method() in ("fork", "spawn")
    from sklearn_imgcls._core.images import ImageFileDataset

    dataset = ImageFileDataset(np.asarray(paths[:8], dtype=object), None, (1, 8, 8))
    loader = make_loader(dataset, 4, 2)
    assert loader.num_workers == 2 and loader.multiprocessing_context is not None
    assert loader.multiprocessing_context.get_start_method() == worker_context().get_start_method()
    assert sum(len(images) for images, _ in loader) == 8
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert make_loader(dataset, 4, 2).num_workers == 0
    assert resolve_workers("auto") == 0 and resolve_workers(3) == 0


def test_auto_workers_follow_the_threads_this_process_was_given(monkeypatch):
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert resolve_workers("auto") == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    assert resolve_workers("auto") == 4
    assert resolve_workers(0) == 0
    with pytest.raises(ValueError, match="num_workers"):
        resolve_workers(-1)
