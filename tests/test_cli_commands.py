"""The command line as a user drives it: subprocesses on real files in a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skorch.callbacks import Callback


def run(*args, cwd=None):
    # one torch thread: the test runs beside another pytest-xdist worker on the same cores
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sklearn_imgcls.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


def one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def photos(tmp_path_factory, digits):
    """Two classes of digits as PNG and JPEG files of several sizes and modes."""
    X, y = digits
    root = tmp_path_factory.mktemp("photos")
    for label, digit in (("zero", 0), ("one", 1)):
        (root / label).mkdir()
        for k, i in enumerate(np.flatnonzero(y == digit)[:30]):
            image = Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8))
            size = (8, 8) if k % 3 else (12, 10)
            image = image.resize(size)
            if k % 4 == 0:
                image.convert("RGB").save(root / label / f"{k}.jpg", quality=95)
            elif k % 4 == 1:
                image.convert("RGBA").save(root / label / f"{k}.png")
            else:
                image.save(root / label / f"{k}.png")
    return root


def test_train_predict_evaluate_round_trip(photos, tmp_path):
    model = tmp_path / "model.safetensors"
    result = run("train", photos, "--preset", "fast", "--threads", "1", "--param", "image_shape=[1,8,8]", "--param", "max_epochs=8",
                 "--param", "lr=0.005", "--param", 'lr_schedule="constant"', "--param", "random_state=0",
                 "--out", model, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "CNNClassifier(simple_cnn) on 60 images" in result.stdout and model.is_file()
    assert model.read_bytes()[8:9] == b"{"  # the safe format: a safetensors header, no pickle

    result = run("predict", model, photos / "zero", photos / "one" / "2.png", "--proba")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(table.columns) == ["path", "prediction", "proba_one", "proba_zero"]
    assert len(table) == 31 and np.allclose(table[["proba_one", "proba_zero"]].sum(axis=1), 1, atol=1e-5)
    assert (table["prediction"].iloc[:30] == "zero").mean() > 0.8

    if __import__("importlib").util.find_spec("onnxruntime") is not None:
        result = run("export", model, "--onnx", tmp_path / "model.onnx")
        assert result.returncode == 0, result.stderr
        assert "output 'probabilities' (N, 2) in the order ['one', 'zero']" in result.stdout
        assert sorted(p.name for p in tmp_path.glob("model.onnx*")) == ["model.onnx"]  # no .data side file

    table_path = tmp_path / "labels.csv"  # the same images as a path,label table, relative paths
    rows = [(f"photos/{p.parent.name}/{p.name}", p.parent.name) for p in sorted(photos.glob("*/*.*"))]
    (tmp_path / "photos").symlink_to(photos)
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(table_path, index=False)
    report = tmp_path / "report"
    result = run("evaluate", model, table_path, "--report", report)
    assert result.returncode == 0, result.stderr
    accuracy = float(next(line for line in result.stdout.splitlines() if "accuracy:" in line).split(":")[1])
    assert accuracy > 0.8 and (report / "index.html").is_file()


def test_tune_with_a_json_grid_saves_the_best_model(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"lr": [0.0001, 0.01]}))
    out = tmp_path / "best.safetensors"
    result = run("tune", "digits", "--grid", grid, "--param", "max_epochs=2", "--cv", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert 'best score' in result.stdout and '"lr": 0.01' in result.stdout and out.is_file()
    from sklearn_imgcls import load

    assert load(str(out)).get_params()["lr"] == 0.01


def test_user_errors_exit_2_with_one_line(photos, tmp_path):
    one_line_error(run("train", tmp_path / "missing", "--out", tmp_path / "m.safetensors"), "none of these")
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "dog").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "data" / "cat" / "a.png")
    one_line_error(run("train", tmp_path / "data", "--out", tmp_path / "m.safetensors"), "dog' has no image files")
    one_line_error(run("train", photos, "--backbone", "resnet19", "--out", tmp_path / "m.safetensors", "--quiet"),
                   "Did you mean 'resnet18'")
    one_line_error(run("train", photos, "--param", "epochs=3", "--out", tmp_path / "m.safetensors"),
                   "Unknown parameter(s) ['epochs']")
    bad = tmp_path / "grid.json"
    bad.write_text('{"lr": [0.001,, 0.01]}')
    one_line_error(run("tune", "digits", "--grid", bad), "is not valid JSON")
    bad.write_text('{"lr": 0.001}')
    one_line_error(run("tune", "digits", "--grid", bad), "non-empty lists")
    one_line_error(run("predict", tmp_path / "none.safetensors", photos), "No model file")


def test_tune_on_a_local_dask_cluster_finds_what_loky_finds(tmp_path, capsys):
    import dask.distributed  # noqa: F401 - in the test extra: a missing one fails here, never skips
    from sklearn_imgcls.cli.main import main

    grid = tmp_path / "grid.yaml"
    grid.write_text("lr: [0.0001, 0.01]\nbatch_size: [64]\n")
    best = {}
    threads = torch.get_num_threads()
    for backend in ("loky", "dask"):
        # on Dask, --threads 2 gives each of the 2 workers 1 torch thread, as loky does by default here
        assert main(["tune", "digits", "--grid", str(grid), "--param", "max_epochs=2", "--cv", "2",
                     "--n-jobs", "2", "--backend", backend, *(["--threads", "2"] if backend == "dask" else [])]) == 0
        out = capsys.readouterr().out
        best[backend] = out.splitlines()[0]
    torch.set_num_threads(threads)
    assert best["loky"] == best["dask"]
    assert '"lr": 0.01' in best["dask"]


class _Interrupt(Callback):
    """Presses Ctrl-C after ``epoch`` epochs."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, digits_small):
    from skorch.callbacks import Checkpoint

    from sklearn_imgcls import CNNClassifier
    from sklearn_imgcls.cli.commands import checkpoint_callback

    X, y = digits_small
    folder = str(tmp_path / "run.checkpoint")
    params = dict(image_shape=(1, 8, 8), max_epochs=5, lr=5e-3, random_state=0)
    interrupted = CNNClassifier(**params, callbacks=[checkpoint_callback(folder), ("stop", _Interrupt(2))]).fit(X, y)
    assert len(interrupted.history_) == 2  # Ctrl-C ended the loop after epoch 2, weights kept
    first_losses = interrupted.history_[:, "train_loss"]
    resumed = CNNClassifier(**params, callbacks=[checkpoint_callback(folder)]).fit(X, y, resume_from=folder)
    assert len(resumed.history_) == 5
    assert resumed.history_[:2, "train_loss"] == first_losses
    assert resumed.history_[-1, "train_loss"] < first_losses[-1]
    other = CNNClassifier(**{**params, "backbone": "bn_cnn"}, callbacks=[Checkpoint(dirname=str(tmp_path / "x"))])
    with pytest.raises(ValueError, match="does not fit this estimator and data"):
        other.fit(X, y, resume_from=folder)
    with pytest.raises(ValueError, match="lacks"):
        CNNClassifier(**params).fit(X, y, resume_from=str(tmp_path))


def test_cli_resume_needs_a_checkpoint(tmp_path):
    one_line_error(run("train", "digits", "--out", tmp_path / "m.safetensors", "--resume", "--quiet"),
                   "found no checkpoint folder")
