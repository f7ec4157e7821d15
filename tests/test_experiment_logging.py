"""``log=``: fits logged through skorch's TensorBoard / MlflowLogger callbacks, read back from the real stores.

MLflow runs go to a SQLite store (and once to MLflow's file store) in
``tmp_path`` and are read back with ``MlflowClient``; TensorBoard event files
are read back with tensorboard's ``EventAccumulator``.
"""

from __future__ import annotations

import glob
import os
import pickle
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.run_logging import logged_runs
from sklearn_imgcls.checkpoints import TrainingCheckpoint
from sklearn_imgcls.persistence import load


def _digits(n=60):
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [0, 1, 2])
    return X[keep][:n].astype("float32"), y[keep][:n]


def _clf(log, **params):
    settings = dict(backbone="simple_cnn", image_shape=(1, 8, 8), max_epochs=2, batch_size=32, lr=0.01,
                    validation_fraction=0.25, scoring=["f1_macro"], verbose=0, random_state=0, num_workers=0)
    settings.update(params)
    return CNNClassifier(log=log, **settings)


def _events(folder):
    events = EventAccumulator(folder, size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    return events


def _run_folders(root):
    return sorted(path for path in glob.glob(os.path.join(root, "*")) if os.path.isdir(path))


@pytest.mark.parametrize("spec", ["wandb:runs", "tensorboard:s3://bucket/runs", "tensorboard:runs#exp", "", 3,
                                  ["tensorboard:runs", None], {"mlflow": "x"}])
def test_a_bad_spec_is_refused_with_the_forms(spec):
    X, y = _digits(30)
    with pytest.raises(ValueError, match=r"'tensorboard:DIR'.*'mlflow:URI'"):
        _clf(spec, max_epochs=1).fit(X, y)


@pytest.mark.parametrize("module, spec", [("mlflow", "mlflow:sqlite:///x.db"), ("tensorboard", "tensorboard:runs")])
def test_a_missing_tracker_names_the_pip_extra(monkeypatch, tmp_path, module, spec):
    monkeypatch.setitem(sys.modules, module, None)  # how Python blocks an import: as if not installed
    monkeypatch.chdir(tmp_path)
    X, y = _digits(30)
    with pytest.raises(ImportError, match=rf"pip install 'sklearn-imgcls\[{module}\]'"):
        _clf(spec, max_epochs=1).fit(X, y)
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_a_fit_logs_params_epochs_and_summary_then_pickles_without_writer_or_client(tmp_path):
    X, y = _digits()
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    clf = _clf([f"tensorboard:{tmp_path / 'tb'}", f"mlflow:{uri}#digits"]).fit(X, y)
    tb_run, ml_run = logged_runs(clf)

    client = MlflowClient(uri)
    run = client.get_run(ml_run.run)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "digits"
    assert run.data.params["lr"] == "0.01" and run.data.params["backbone"] == "simple_cnn"
    assert run.data.params["lr_schedule"] == "None" and run.data.params["lr_schedule_"] == "onecycle"  # preset's
    for key in ("train_loss", "valid_loss", "valid_acc", "valid_f1_macro"):  # valid_f1_macro: a later callback's
        history = client.get_metric_history(ml_run.run, key)
        assert [m.step for m in history] == [1, 2]
        assert history[-1].value == pytest.approx(clf.history_[-1, key])
    assert run.data.metrics["epochs"] == 2 and run.data.metrics["fit_seconds"] > 0
    assert [a.path for a in client.list_artifacts(ml_run.run)] == ["history.json"]
    assert os.path.isdir(tmp_path / "store" / "mlartifacts")  # artifacts beside the database, not in the cwd

    assert _run_folders(tmp_path / "tb") == [tb_run.run]
    events = _events(tb_run.run)
    assert [e.step for e in events.Scalars("metrics/valid_f1_macro")] == [1, 2]
    assert [e.step for e in events.Scalars("loss/train_loss")] == [1, 2]
    assert events.Scalars("final/epochs")[0].value == 2
    params_text = events.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| lr_schedule_ | `onecycle` |" in params_text
    assert events.PluginTagToContent("hparams")  # the HParams dashboard: parameters against final metrics

    callbacks = dict(clf.net_.callbacks_)
    assert callbacks["log_tensorboard"].writer is None and callbacks["log_mlflow"].client_ is None  # closed, dropped
    data = pickle.dumps(clf)
    assert b"SummaryWriter" not in data and b"MlflowClient" not in data
    copy = pickle.loads(data)
    np.testing.assert_allclose(copy.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert clone(clf).log == clf.log
    loaded = load(clf.save(tmp_path / "model.safetensors"))
    assert loaded.log == clf.log and loaded.predict(X).shape == (len(X),)


def test_a_resumed_fit_is_a_new_run_with_the_remaining_epochs(tmp_path):
    X, y = _digits()
    folder, tb = str(tmp_path / "checkpoint"), str(tmp_path / "tb")
    _clf(f"tensorboard:{tb}", max_epochs=1, lr_schedule="constant", callbacks=[TrainingCheckpoint(folder)]).fit(X, y)
    resumed = _clf(f"tensorboard:{tb}", max_epochs=3, lr_schedule="constant", callbacks=[TrainingCheckpoint(folder)])
    resumed.fit(X, y, resume_from=folder)
    first, second = sorted(_run_folders(tb), key=os.path.getmtime)
    assert [e.step for e in _events(first).Scalars("loss/train_loss")] == [1]
    events = _events(second)
    assert [e.step for e in events.Scalars("loss/train_loss")] == [2, 3]
    assert "| resumed_after_epoch | `1` |" in events.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()


def test_mlflow_file_store_follows_mlflow_s_opt_in(tmp_path, monkeypatch):
    import mlflow.environment_variables as env

    X, y = _digits(40)
    store = tmp_path / "mlruns"
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    if hasattr(env, "MLFLOW_ALLOW_FILE_STORE"):  # MLflow 3 keeps its file store behind an opt-in
        with pytest.raises(ValueError, match="MLFLOW_ALLOW_FILE_STORE=true.*sqlite:///"):
            _clf(f"mlflow:{store}", max_epochs=1).fit(X, y)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    clf = _clf(f"mlflow:{store.as_uri()}", max_epochs=1).fit(X, y)
    (run,) = logged_runs(clf)
    client = MlflowClient(store.as_uri())
    assert [m.step for m in client.get_metric_history(run.run, "valid_loss")] == [1]
    assert client.get_run(run.run).data.params["max_epochs"] == "1"


def test_grid_search_on_two_processes_gives_one_run_per_fit(tmp_path):
    X, y = _digits()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # created by whichever process comes first, under a file lock
    search = GridSearchCV(_clf([f"tensorboard:{tmp_path / 'tb'}", f"mlflow:{uri}"], max_epochs=1),
                          {"lr": [0.01]}, cv=2, n_jobs=2, refit=False)
    search.fit(X, y)
    folders = _run_folders(tmp_path / "tb")
    assert len(folders) == 2
    assert all(len(_events(folder).Scalars("loss/valid_loss")) == 1 for folder in folders)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sklearn-imgcls")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and len({run.info.run_id for run in runs}) == 2
    assert all(run.info.status == "FINISHED" and run.data.metrics["epochs"] == 1 for run in runs)


def test_only_the_main_process_of_several_logs(tmp_path):
    """Under several Accelerate processes, rank 0 alone opens the run (one TensorBoard folder, not one per rank)."""
    from sklearn_imgcls._core.run_logging import logging_callbacks

    class Rank:
        def __init__(self, main):
            self.is_main_process, self.num_processes = main, 2

    spec = f"tensorboard:{tmp_path / 'runs'}"
    assert logging_callbacks(spec, CNNClassifier(log=spec, accelerator=Rank(False)), {}) == []
    assert [name for name, _ in logging_callbacks(spec, CNNClassifier(log=spec, accelerator=Rank(True)), {})] == \
        ["log_tensorboard"]


def test_an_unreachable_mlflow_server_and_an_unwritable_folder_fail_fast_naming_log(tmp_path):
    """Was: minutes of MLflow's retries before its own error; a raw FileNotFoundError for the folder."""
    import time

    X, y = load_digits(return_X_y=True)
    began = time.perf_counter()
    with pytest.raises(ValueError, match=r"MLflow tracking server at 'http://127.0.0.1:9' does not answer"):
        CNNClassifier("simple_cnn", image_shape=(1, 8, 8), max_epochs=1, log="mlflow:http://127.0.0.1:9").fit(
            X[:40], y[:40])
    assert time.perf_counter() - began < 30
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=r"log='tensorboard:.*cannot create the TensorBoard folder"):
        CNNClassifier("simple_cnn", image_shape=(1, 8, 8), max_epochs=1, log=f"tensorboard:{blocker}").fit(
            X[:40], y[:40])
