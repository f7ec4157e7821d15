"""The command line's model files, unreadable images, ``validate``, ``--threads`` and its error lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sklearn_imgcls import load
from sklearn_imgcls.cli.main import main

CONSOLE = Path(sys.executable).with_name("sklearn-imgcls")  # .venv/bin/sklearn-imgcls
FAST = ["--preset", "fast", "--param", "max_epochs=1", "--param", "random_state=0", "--threads", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def make_folder(root: Path, labels=("cat", "dog"), n: int = 6, seed: int = 0) -> Path:
    """``root/<label>/<i>.png``: n distinct 8x8 grayscale images per label (dogs have a white top half)."""
    rng = np.random.default_rng(seed)
    for label in labels:
        (root / label).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 200, (8, 8), dtype=np.uint8)
            if label == "dog":
                pixels[:4] = 255
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("photos") / "data")


@pytest.fixture(scope="module")
def model(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    assert main(["train", str(photos), *FAST, "--out", str(path)]) == 0
    return path


def error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sklearn-imgcls: error: "), err
    assert "Traceback" not in err and "np.str_" not in err
    for fragment in fragments:
        assert fragment in err, err
    return err


class Payload:
    """Unpickling it creates the folder ``marker``: proof that code from the pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_train_writes_the_safe_format_that_predict_evaluate_and_export_read(model, photos, tmp_path, capsys):
    assert model.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.safetensors"]  # no checkpoint, no temporary
    assert load(str(model)).classes_.tolist() == ["cat", "dog"]  # the package's own loader reads it
    capsys.readouterr()
    assert main(["predict", str(model), str(photos / "cat"), "--proba"]) == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(table.columns) == ["path", "prediction", "proba_cat", "proba_dog"] and len(table) == 6
    assert main(["evaluate", str(model), str(photos)]) == 0
    assert "accuracy:" in capsys.readouterr().out
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(model), "--onnx", str(onnx_path)]) == 0
    assert "in the order ['cat', 'dog']" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # one file, no .data copy


def test_a_pickle_is_written_and_read_only_with_allow_pickle(photos, tmp_path, capsys):
    out = tmp_path / "m.joblib"
    assert main(["train", str(photos), *FAST, "--out", str(out)]) == 2
    error_line(capsys, repr(str(out)), "--allow-pickle", "m.safetensors'")
    assert list(tmp_path.iterdir()) == []  # refused before training: no model, no checkpoint
    assert main(["train", str(photos), *FAST, "--out", str(out), "--allow-pickle"]) == 0
    assert out.read_bytes()[:1] == b"\x80" and "warning: wrote" in capsys.readouterr().err
    assert main(["predict", str(out), str(photos / "dog" / "0.png")]) == 2
    error_line(capsys, repr(str(out)), "is a pickle", "--allow-pickle")
    assert main(["predict", str(out), str(photos / "dog" / "0.png"), "--allow-pickle"]) == 0
    captured = capsys.readouterr()
    assert "warning: unpickling" in captured.err and captured.out.startswith("path,prediction")


def test_the_console_script_refuses_a_pickle_without_running_it(photos, tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    image = str(photos / "cat" / "0.png")
    for name in ("evil.joblib", "evil.safetensors"):  # recognised by content, not by name
        joblib.dump(Payload(marker), tmp_path / name)
        result = subprocess.run([str(CONSOLE), "predict", str(tmp_path / name), image], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "is a pickle" in result.stderr and "--allow-pickle" in result.stderr and name in result.stderr
        assert not marker.exists()
    # the flag is the only gate: with it, the payload runs (and the file is then refused as no classifier)
    assert main(["predict", str(tmp_path / "evil.joblib"), image, "--allow-pickle"]) == 2
    assert marker.is_dir()
    warning, error = capsys.readouterr().err.splitlines()
    assert warning.startswith("sklearn-imgcls: warning: unpickling") and "does not hold a fitted classifier" in error


def test_the_console_script_names_a_text_file_given_as_model(photos, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# notes\n\nnot a model\n")
    result = subprocess.run([str(CONSOLE), "predict", str(readme), str(photos / "cat" / "0.png")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{str(readme)!r} is a text file, not a model file; expected a model written by" in result.stderr


def _tamper(model: Path, old: bytes, new: bytes) -> bytes:
    data = model.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    return data.replace(old, new)


MISTAKES = {
    "missing": (None, "No model file at"),
    "folder": ("folder", "is a folder"),
    "png image": (lambda m, p: (p / "cat" / "0.png").read_bytes(), "is a PNG image"),
    "text file": (lambda m, p: b"# README\nsklearn-imgcls predicts images.\n", "is a text file"),
    "empty": (lambda m, p: b"", "is empty"),
    "truncated header": (lambda m, p: m.read_bytes()[:100], "truncated safetensors file"),
    "truncated tensors": (lambda m, p: m.read_bytes()[:-1000], "Cannot load model file"),
    "unknown estimator": (lambda m, p: _tamper(m, b'"CNNClassifier"', b'"XNNClassifier"'), "Cannot load model file"),
    "broken params JSON": (lambda m, p: _tamper(m, b'max_epochs\\": 1', b'max_epochs\\": ['), "Cannot load model file"),
    "wrong architecture": (lambda m, p: _tamper(m, b'num_outputs\\": 2', b'num_outputs\\": 3'),
                           "Cannot load model file"),
    "pickle": (lambda m, p: None, "is a pickle"),
    "binary": (lambda m, p: bytes(range(256)) * 4, "is not a model file"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_every_model_file_mistake_exits_2_with_one_line(mistake, model, photos, tmp_path, capsys):
    make, fragment = MISTAKES[mistake]
    path = tmp_path / "model.safetensors"
    if make == "folder":
        path.mkdir()
    elif mistake == "pickle":
        joblib.dump({"weights": [1, 2]}, path)
    elif make is not None:
        path.write_bytes(make(model, photos))
    assert main(["predict", str(path), str(photos / "cat" / "0.png")]) == 2
    err = error_line(capsys, repr(str(path)), fragment)
    assert any(fix in err for fix in ("expected a model written by", "again", "--allow-pickle", "train one"))


@pytest.mark.parametrize("command", [["evaluate", "{model}", "{data}"], ["export", "{model}", "--onnx", "{onnx}"]])
def test_evaluate_and_export_read_models_the_same_way(command, photos, tmp_path, capsys):
    path = tmp_path / "README.md"
    path.write_text("# not a model\n")
    argv = [a.format(model=path, data=photos, onnx=tmp_path / "m.onnx") for a in command]
    assert main(argv) == 2
    error_line(capsys, repr(str(path)), "is a text file")
    assert not (tmp_path / "m.onnx").exists()


def test_a_write_problem_names_the_users_path_in_one_line(model, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "model.onnx"
    assert main(["export", str(model), "--onnx", str(target)]) == 2
    error_line(capsys, f"Cannot write {str(target)!r}", "not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary left behind
    assert main(["export", str(model), "--onnx", str(tmp_path / "no" / "model.onnx")]) == 2
    error_line(capsys, "does not exist")


def test_messages_show_plain_values_not_numpy_reprs(tmp_path, capsys):
    from sklearn_imgcls.cli.main import one_line

    assert one_line(ValueError("y has np.str_('only') and np.int64(3),\nnp.float32(0.5) np.True_")) == \
        "y has 'only' and 3, 0.5 True"
    folder = make_folder(tmp_path / "one", labels=("only",))
    assert main(["train", str(folder), *FAST, "--out", str(tmp_path / "m.safetensors")]) == 2
    error_line(capsys, "('only')")


def test_validate_exits_0_when_clean_and_1_listing_issues(photos, tmp_path, capsys):
    assert main(["validate", str(photos)]) == 0
    out = capsys.readouterr().out
    assert "images: 12" in out and "class_counts: {'cat': 6, 'dog': 6}" in out and out.endswith("no issues\n")
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    (data / "cat" / "broken.png").write_bytes((photos / "cat" / "1.png").read_bytes()[:60])
    shutil.copy(photos / "cat" / "0.png", data / "dog" / "copy.png")
    assert main(["validate", str(data), "--test", str(photos / "cat")]) == 1
    out = capsys.readouterr().out
    assert "unreadable" in out and "broken.png" in out and "duplicate_conflicting_labels" in out
    assert "test_duplicate_of_train" in out and "test_images: 6" in out
    assert main(["validate", str(tmp_path / "nowhere")]) == 2
    error_line(capsys, "DATA must be")


@pytest.fixture
def damaged(photos, tmp_path):
    """A copy of ``photos`` with a truncated PNG and a text file named .png."""
    data = tmp_path / "damaged"
    shutil.copytree(photos, data)
    (data / "cat" / "truncated.png").write_bytes((photos / "cat" / "1.png").read_bytes()[:60])
    (data / "dog" / "notes.png").write_text("not an image")
    return data


def test_unreadable_images_stop_the_work_naming_all_or_are_skipped(damaged, model, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train", str(damaged), *FAST, "--out", str(out)]) == 2
    error_line(capsys, "2 unreadable image file(s)", "truncated.png", "notes.png", "--skip-invalid")
    assert not out.exists()
    assert main(["train", str(damaged), *FAST, "--out", str(out), "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert "on 12 images" in captured.out and "skipped 2" in captured.err
    assert "truncated.png" in captured.err and "notes.png" in captured.err
    for command in (["predict", str(model), str(damaged / "cat"), str(damaged / "dog")],
                    ["evaluate", str(model), str(damaged)]):
        assert main(command) == 2
        error_line(capsys, "truncated.png", "notes.png")
        assert main([*command, "--skip-invalid"]) == 0
        captured = capsys.readouterr()
        assert "skipped 2" in captured.err and "truncated.png" not in captured.out
    assert main(["predict", str(model), str(damaged / "dog" / "notes.png"), "--skip-invalid"]) == 2
    error_line(capsys, "None of the 1 image file(s) can be decoded", "notes.png")


def test_threads_sets_torch_and_a_fixed_count_repeats_the_model(photos, model, tmp_path, capsys):
    assert main(["predict", str(model), str(photos / "cat"), "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    tables = []
    for run in ("a", "b"):
        path = tmp_path / f"{run}.safetensors"
        assert main(["train", str(photos), *FAST, "--out", str(path)]) == 0
        capsys.readouterr()
        assert main(["predict", str(path), str(photos), "--proba", "--threads", "1"]) == 0
        tables.append(capsys.readouterr().out)
    assert tables[0] == tables[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(photos), "--out", str(tmp_path / "x.safetensors"), "--threads", "0"])
    assert exit_info.value.code == 2 and "positive whole number" in capsys.readouterr().err


def test_tune_gives_each_parallel_fit_its_share_of_the_threads(photos, tmp_path, capsys, monkeypatch):
    import json

    from sklearn.model_selection import GridSearchCV
    from sklearn.utils.parallel import Parallel, delayed

    from sklearn_imgcls.cli.commands import fit_threads

    assert (fit_threads(4, 2), fit_threads(3, 2), fit_threads(1, 4), fit_threads(None, 2)) == (2, 1, 1, None)
    seen = []

    def record_worker_threads(self, X, y=None, **params):
        # runs where GridSearchCV would start its fits: ask two real loky workers for their torch threads
        seen.extend(Parallel(n_jobs=self.n_jobs)(delayed(torch.get_num_threads)() for _ in range(2)))
        raise ValueError("stopped after recording the workers' threads")

    monkeypatch.setattr(GridSearchCV, "fit", record_worker_threads)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"lr": [0.001, 0.01]}))
    # 4 threads over 2 jobs: 2 each (loky alone would give 2 cores // 2 jobs = 1)
    assert main(["tune", str(photos), "--grid", str(grid), "--n-jobs", "2", "--threads", "4", "--cv", "2"]) == 2
    error_line(capsys, "stopped after recording")
    assert seen == [2, 2]


def test_a_closed_output_pipe_ends_quietly(monkeypatch, capsys):
    from sklearn_imgcls.cli import commands

    def reader_went_away(*args, **kwargs):  # what writing to `| head` raises once head has exited
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(commands, "predict_command", reader_went_away)
    assert main(["predict", "model.safetensors", "image.png"]) == 1
    assert capsys.readouterr().err == ""
