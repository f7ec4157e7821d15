"""Batch prediction at scale: streamed CSV/parquet output in chunks, path tables, and the Dask backend."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.batch_predict import output_format, predict_files
from sklearn_imgcls.cli.main import main


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp("scale_photos")
    for i in range(30):
        (folder / f"d{i // 10}").mkdir(exist_ok=True)
        Image.fromarray((X[i].reshape(8, 8) * 15).astype(np.uint8)).save(folder / f"d{i // 10}" / f"{i:02d}.png")
    model = CNNClassifier("simple_cnn", preset="fast", max_epochs=1, batch_size=16, num_threads=1, num_workers=0,
                          random_state=0).fit(X[:60].reshape(-1, 8, 8) * 15, y[:60])
    path = folder.parent / "scale_model.safetensors"
    model.save(str(path))
    return folder, str(path)


def _expected(model_path, paths):
    from sklearn_imgcls.persistence import load

    model = load(model_path)
    probabilities = model.predict_proba(paths)  # one call over all files: the non-streaming answer
    table = pd.DataFrame({"path": paths, "prediction": model.classes_[probabilities.argmax(axis=1)]})
    for i, label in enumerate(model.classes_):
        table[f"proba_{label}"] = np.round(probabilities[:, i], 6)
    return table


def test_streamed_csv_and_parquet_equal_one_whole_prediction(photos, tmp_path, capsys):
    folder, model = photos
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    expected = _expected(model, paths)
    assert main(["predict", model, str(folder), "--proba", "--threads", "1"]) == 0  # stdout CSV stays the default
    stdout = capsys.readouterr().out
    assert stdout == expected.to_csv(index=False)
    out = tmp_path / "predictions.csv"
    assert main(["predict", model, str(folder), "--proba", "--out", str(out), "--chunk-size", "7"]) == 0
    assert out.read_text() == stdout  # five chunks of 7, 7, 7, 7, 2 files: the same bytes
    parquet = tmp_path / "predictions.parquet"
    assert main(["predict", model, str(folder), "--proba", "--out", str(parquet), "--chunk-size", "7"]) == 0
    import pyarrow.parquet as pq

    assert pq.ParquetFile(parquet).num_row_groups == 5  # one row group per chunk, written as it went
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), pd.read_csv(out))
    # a path table (relative paths are relative to the table) gives the same rows
    table = folder / "list.csv"
    pd.DataFrame({"path": [p[len(str(folder)) + 1:] for p in paths], "note": "x"}).to_csv(table, index=False)
    assert main(["predict", model, str(table), "--proba"]) == 0
    assert capsys.readouterr().out == stdout
    table.unlink()


def test_the_model_never_sees_more_than_a_chunk(photos, monkeypatch):
    from sklearn_imgcls.persistence import load

    folder, model_path = photos
    model = load(model_path)
    sizes = []
    original = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda X: sizes.append(len(X)) or original(X))
    sink = io.StringIO()
    run = predict_files(model, [folder], sink, chunk_size=4)
    assert sizes == [4] * 7 + [2] and run.n_written == 30 and len(sink.getvalue().splitlines()) == 31


def test_bad_outputs_are_refused_before_any_work(photos, tmp_path, capsys, monkeypatch):
    folder, model = photos
    assert main(["predict", model, str(folder), "--out", str(tmp_path / "p.xlsx")]) == 2
    assert "must end in .csv or .parquet" in capsys.readouterr().err
    assert not (tmp_path / "p.xlsx").exists()
    with pytest.raises(ValueError, match="is a folder"):
        output_format(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(ValueError, match=r"needs pyarrow: pip install 'sklearn-imgcls\[parquet\]'"):
        predict_files(model, [folder], tmp_path / "p.parquet")
    with pytest.raises(ValueError, match="chunk_size"):
        predict_files(model, [folder], chunk_size=0)


def test_dask_backend_output_equals_local(photos, tmp_path, capsys):
    from dask import distributed  # the test extra installs it: a missing dask fails here, never skips

    folder, model = photos
    local = tmp_path / "local.csv"
    assert main(["predict", model, str(folder), "--proba", "--out", str(local), "--chunk-size", "4"]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = tmp_path / "dask.csv"
        assert main(["predict", model, str(folder), "--proba", "--out", str(remote), "--chunk-size", "4",
                     "--backend", "dask", "--scheduler", cluster.scheduler_address]) == 0
        assert remote.read_bytes() == local.read_bytes()
        # from Python with the model's path: each worker loads it once and keeps it for the later chunks
        sink = io.StringIO()
        run = predict_files(model, [folder], sink, chunk_size=4, client=client, in_flight=2)
        loads = client.run(lambda: __import__("sklearn_imgcls.batch_predict").batch_predict._cached_model
                           .cache_info().misses)
    assert run.n_written == 30 and sorted(loads.values()) in ([0, 1], [1, 1])  # once per worker at most
    expected = pd.read_csv(local)[["path", "prediction"]]
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(sink.getvalue())), expected)


def test_sigterm_and_ctrl_c_leave_no_half_written_output(tmp_path):
    """SIGTERM (SLURM, Kubernetes, `timeout`) exits 143 after the clean-up Ctrl-C gets: no hidden partial file."""
    import os
    import subprocess

    script = """
import os, signal, sys
from sklearn_imgcls._core.atomic import atomic_path
from sklearn_imgcls.cli.main import _run, _terminate_cleanly, build_parser

def stopped_midway(*args, **kwargs):
    with atomic_path(sys.argv[1]) as temporary:
        with open(temporary, "w") as out:
            out.write("path,prediction\\n")
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))

# a test run started in the background (`cmd &` without job control) hands its children SIGINT ignored, and
# Python then raises no KeyboardInterrupt: give the child what a terminal's Ctrl-C meets
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.modules["sklearn_imgcls.cli.main"]._dispatch = stopped_midway  # the command, stopped while writing
with _terminate_cleanly():
    sys.exit(_run(build_parser().parse_args(["plugins"])))
"""
    for name, code in (("SIGTERM", 143), ("SIGINT", 130)):
        out = tmp_path / f"{name}.csv"
        done = subprocess.run([sys.executable, "-c", script, str(out), name], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == code, done.stderr
        assert os.listdir(tmp_path) == [], os.listdir(tmp_path)  # neither the output nor its hidden partial
        if name == "SIGINT":
            assert done.stderr.strip().splitlines() == [
                "sklearn-imgcls: interrupted (Ctrl-C); nothing was written under the output's name"]
