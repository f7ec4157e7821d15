"""Searches on a cluster: the leaderboard on Dask workers equals the local one; successive halving over epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.cli.main import main
from sklearn_imgcls.select import FlattenPixels, leaderboard


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [0, 1, 7])
    return (X[keep][:90] * 16).clip(0, 255).astype(np.uint8).reshape(-1, 8, 8), y[keep][:90]


def _candidates():
    return {
        "logistic": make_pipeline(FlattenPixels((1, 8, 8)), LogisticRegression(max_iter=200)),
        "cnn": CNNClassifier("simple_cnn", preset="fast", max_epochs=2, batch_size=16, num_threads=1,
                             num_workers=0, random_state=0),
    }


def test_leaderboard_on_a_dask_cluster_equals_the_local_one_and_scatters_the_data_once(digits, monkeypatch):
    from dask import distributed  # the test extra installs it: a missing dask fails here, never skips

    X, y = digits
    local = leaderboard(X, y, _candidates(), cv=3, random_state=0, refit=False)
    scattered = []
    original = distributed.Client.scatter

    def counting_scatter(self, data, *args, **kwargs):
        scattered.append(data)
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "scatter", counting_scatter)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        remote = leaderboard(X, y, _candidates(), cv=3, random_state=0, refit=False, backend="dask")
    assert list(remote["name"]) == list(local["name"]) and set(remote["status"]) == {"ok"}
    for column in ("mean_accuracy", "std_accuracy", "mean_balanced_accuracy", "mean_f1_macro", "n_parameters"):
        np.testing.assert_allclose(remote[column], local[column], rtol=0, atol=1e-9)
    # X and y went to the workers in one scatter call for both candidates and all 3 folds, not per task
    sent = [item for data in scattered for item in (data if isinstance(data, list) else [data])]
    assert sum(item is X for item in sent) == 1 and sum(item is y for item in sent) == 1
    with pytest.raises(ValueError, match="no Dask client"):
        leaderboard(X, y, _candidates(), cv=3, backend="dask")
    with pytest.raises(ValueError, match="backend must be"):
        leaderboard(X, y, _candidates(), cv=3, backend="spark")


def test_halving_random_search_over_epochs_with_our_estimator(digits):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    X, y = digits
    estimator = CNNClassifier("simple_cnn", preset="fast", batch_size=16, num_threads=1, num_workers=0,
                              random_state=0)
    search = HalvingRandomSearchCV(estimator, {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}, resource="max_epochs",
                                   min_resources=1, max_resources=2, factor=2, n_candidates=4, cv=2,
                                   random_state=0).fit(X, y)
    assert search.n_resources_ == [1, 2] and search.n_candidates_ == [4, 2]
    # every fit of round k trained exactly n_resources_[k] epochs: the resource really is max_epochs
    assert search.best_params_["max_epochs"] == 2 and len(search.best_estimator_.history_) == 2
    assert sorted(set(search.cv_results_["n_resources"])) == [1, 2]


def test_tune_command_runs_successive_halving_and_refuses_bad_epoch_options(digits, tmp_path, capsys):
    X, y = digits
    data = tmp_path / "digits.npz"
    np.savez(data, X=X, y=y)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"lr": [1e-3, 1e-2, 3e-2]}))
    base = ["tune", str(data), "--grid", str(grid), "--cv", "2", "--param", 'preset="fast"', "--param",
            "batch_size=16", "--param", "num_workers=0", "--threads", "1"]
    assert main([*base, "--search", "halving", "--min-epochs", "1", "--max-epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "best score" in out and '"max_epochs": 3' in out
    table = out.splitlines()[1:]
    assert table[0].split()[0] == "epochs" and table[1].split()[0] == "3"  # the last round ranks first
    assert main([*base, "--search", "halving", "--min-epochs", "1"]) == 2
    assert "needs --min-epochs and --max-epochs" in capsys.readouterr().err
    assert main([*base, "--search", "halving", "--min-epochs", "4", "--max-epochs", "2"]) == 2
    assert "at most --max-epochs" in capsys.readouterr().err
    assert main([*base, "--max-epochs", "2"]) == 2
    assert "belong to --search halving" in capsys.readouterr().err


def test_tune_names_a_failed_candidate_in_one_line_and_refuses_when_all_fail(tmp_path, capsys):
    """Was: scikit-learn's FitFailedWarning with full tracebacks, or its 'All the N fits failed' wall of text."""
    X, y = load_digits(return_X_y=True)
    data = str(tmp_path / "d.npz")
    np.savez(data, X=(X[:300] / 16).reshape(-1, 1, 8, 8), y=y[:300])
    grid = tmp_path / "grid.json"
    common = ["--cv", "2", "--param", 'backbone="simple_cnn"', "--param", "max_epochs=2", "--param", 'preset="fast"']
    grid.write_text(json.dumps({"lr": [0.003, 200.0]}))
    assert main(["tune", data, "--grid", str(grid), *common]) == 0
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if "failed and scored NaN" in line]
    assert len(notes) == 1 and "'lr': 200.0" in notes[0] and "TrainingDivergedError" in notes[0]
    assert "Traceback" not in err and "best score" in out
    grid.write_text(json.dumps({"lr": [200.0, 300.0]}))
    assert main(["tune", data, "--grid", str(grid), *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "every candidate of the search failed (TrainingDivergedError" in err
