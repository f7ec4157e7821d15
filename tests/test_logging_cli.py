"""``--log`` on ``train`` and ``evaluate``, read back from a real MLflow SQLite store and TensorBoard event files."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from sklearn.datasets import load_digits
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sklearn_imgcls.cli.main import main


def _events(folder):
    events = EventAccumulator(folder, size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    return events


def _text(events, tag):
    return events.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()


def test_train_and_evaluate_log_params_metrics_model_file_and_report(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, [0, 1, 2])
    data = tmp_path / "digits.npz"
    np.savez(data, X=X[keep][:90].reshape(-1, 8, 8).astype(np.uint8), y=y[keep][:90])
    uri, tb, model = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "tb"), str(tmp_path / "model.safetensors")
    logs = ["--log", f"tensorboard:{tb}", "--log", f"mlflow:{uri}#cli"]
    assert main(["train", str(data), "--out", model, "--backbone", "simple_cnn", "--param", "max_epochs=2",
                 "--param", "validation_fraction=0.25", "--quiet", *logs]) == 0
    assert main(["evaluate", model, str(data), "--report", str(tmp_path / "report"), *logs]) == 0
    out = capsys.readouterr().out
    assert "logged to MLflow run" in out and "logged the evaluation to TensorBoard folder" in out

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("cli")
    train_run, = client.search_runs([experiment.experiment_id], "params.max_epochs = '2'")
    assert [m.step for m in client.get_metric_history(train_run.info.run_id, "valid_loss")] == [1, 2]
    assert train_run.data.params["backbone"] == "simple_cnn"
    assert {a.path for a in client.list_artifacts(train_run.info.run_id)} == {"history.json", "model.safetensors"}
    eval_run, = client.search_runs([experiment.experiment_id], "tags.sklearn_imgcls.command = 'evaluate'")
    assert 0 <= eval_run.data.metrics["accuracy"] <= 1 and "f1_macro" in eval_run.data.metrics
    assert eval_run.data.params["model"] == model
    artifacts = {a.path for a in client.list_artifacts(eval_run.info.run_id)}
    assert {"per_class.csv", "report"} <= artifacts
    assert "report/index.html" in {a.path for a in client.list_artifacts(eval_run.info.run_id, "report")}

    train_folder, = glob.glob(os.path.join(tb, "CNNClassifier-*"))
    events = _events(train_folder)
    assert [e.step for e in events.Scalars("loss/train_loss")] == [1, 2]
    assert os.path.abspath(model) in _text(events, "model_file")
    eval_folder, = glob.glob(os.path.join(tb, "evaluate-*"))
    events = _events(eval_folder)
    assert events.Scalars("evaluate/accuracy")[0].value == pytest.approx(eval_run.data.metrics["accuracy"])
    summary = _text(events, "evaluation")
    assert "| accuracy |" in summary and "per_class" in summary


def test_a_bad_log_spec_stops_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "digits", "--out", str(tmp_path / "m.safetensors"), "--log", "neptune:x"])
    assert stop.value.code == 2
    assert "'tensorboard:DIR'" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_log_twice_is_refused(tmp_path, capsys):
    code = main(["train", "digits", "--out", str(tmp_path / "m.safetensors"), "--log", f"tensorboard:{tmp_path}",
                 "--param", 'log="tensorboard:runs"'])
    assert code == 2 and "--log or with --param log=" in capsys.readouterr().err
