"""Training checkpoints: atomic per-epoch sets, checked resumes, and resumed fits equal to uninterrupted ones."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from skorch.callbacks import Callback

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls import checkpoints as C
from sklearn_imgcls.checkpoints import TrainingCheckpoint
from sklearn_imgcls.cli.commands import checkpoint_callback

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def tiny(digits):
    X, y = digits
    return X[:160], y[:160]


class CtrlC(Callback):
    """Presses Ctrl-C at the first training batch of epoch ``epoch + 1`` (after epoch ``epoch`` was saved)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch + 1:
            raise KeyboardInterrupt


def _params(**extra):
    return {"preset": "fast", "max_epochs": 3, "random_state": 0, "image_shape": SHAPE, **extra}


def _interrupted(folder, X, y, epoch=1, **extra):
    clf = CNNClassifier(**_params(**extra), callbacks=[checkpoint_callback(str(folder)), CtrlC(epoch)]).fit(X, y)
    assert len(clf.history_) == epoch + 1  # stopped in the middle of the next epoch
    return clf


def _same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.net_.module_.state_dict().values(), b.net_.module_.state_dict().values()))


@pytest.mark.parametrize("extra", [{}, {"augment": "light", "validation_fraction": 0.25}, {"preset": "accurate"}],
                         ids=["fast-onecycle", "light-augment-valid-split", "default-preset-random-crop"])
def test_resumed_fit_equals_the_uninterrupted_one_exactly(tmp_path, tiny, extra):
    X, y = tiny
    whole = CNNClassifier(**_params(**extra)).fit(X, y)
    _interrupted(tmp_path, X, y, **extra)
    resumed = CNNClassifier(**_params(**extra), callbacks=[checkpoint_callback(str(tmp_path))])
    resumed.fit(X, y, resume_from=str(tmp_path))
    assert len(resumed.history_) == 3
    for key in ("train_loss", "valid_loss") if "validation_fraction" in extra else ("train_loss",):
        assert [float(v) for v in resumed.history_[:, key]] == [float(v) for v in whole.history_[:, key]]
    assert _same_weights(resumed, whole)
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))


def test_each_epoch_is_one_complete_set_with_a_manifest(tmp_path, tiny):
    X, y = tiny
    CNNClassifier(**_params(max_epochs=2), callbacks=[TrainingCheckpoint(str(tmp_path))]).fit(X, y)
    assert sorted(os.listdir(tmp_path)) == ["epoch-0002", "latest.json"]  # older sets are dropped
    assert json.loads((tmp_path / "latest.json").read_text())["latest"] == "epoch-0002"
    manifest = json.loads((tmp_path / "epoch-0002" / "manifest.json").read_text())
    assert manifest["format"] == C.FORMAT_VERSION and manifest["epochs"] == 2
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "epoch-0002" / name).read_bytes()).hexdigest() == digest
    fingerprint = manifest["fingerprint"]
    assert fingerprint["classes"] == list(range(10)) and fingerprint["n_images"] == 160
    assert "max_epochs" not in fingerprint["params"] and fingerprint["params"]["preset"] == "fast"


def _rewrite(folder, name, data, fix_checksum):
    path = folder / "epoch-0002" / name
    path.write_bytes(data)
    if fix_checksum:
        manifest_path = folder / "epoch-0002" / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["files"][name] = hashlib.sha256(data).hexdigest()
        manifest_path.write_text(json.dumps(manifest))


@pytest.fixture
def two_epochs(tmp_path, tiny):
    X, y = tiny
    folder = tmp_path / "run"
    CNNClassifier(**_params(), callbacks=[TrainingCheckpoint(str(folder)), CtrlC(2)]).fit(X, y)
    return folder


def _resume(folder, X, y, **extra):
    return CNNClassifier(**_params(**extra)).fit(X, y, resume_from=str(folder))


def test_an_empty_or_truncated_file_is_named_not_an_eoferror(two_epochs, tiny):
    _rewrite(two_epochs, "optimizer.pt", b"", fix_checksum=False)
    with pytest.raises(ValueError, match=r"Cannot resume from .*run'.*epoch-0002/optimizer\.pt is damaged \(0 bytes"):
        _resume(two_epochs, *tiny)
    params = (two_epochs / "epoch-0002" / "params.pt").read_bytes()
    _rewrite(two_epochs, "params.pt", params[: len(params) // 2], fix_checksum=False)
    with pytest.raises(ValueError, match=r"params\.pt is damaged.*truncated"):
        _resume(two_epochs, *tiny)


def test_history_of_another_epoch_is_refused(two_epochs, tiny):
    # params of epoch 2 with the history of epoch 1 (what an in-place writer killed midway left behind)
    history = json.loads((two_epochs / "epoch-0002" / "history.json").read_text())
    _rewrite(two_epochs, "history.json", json.dumps(history[:1]).encode(), fix_checksum=False)
    with pytest.raises(ValueError, match="history.json is damaged"):
        _resume(two_epochs, *tiny)
    _rewrite(two_epochs, "history.json", json.dumps(history[:1]).encode(), fix_checksum=True)
    with pytest.raises(ValueError, match="holds a history of 1 epochs but its manifest says 2"):
        _resume(two_epochs, *tiny)


def test_unreadable_pointers_and_manifests_are_named(two_epochs, tiny, tmp_path):
    (two_epochs / "latest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"its pointer latest\.json cannot be read \(JSONDecodeError\)"):
        _resume(two_epochs, *tiny)
    (two_epochs / "latest.json").write_text(json.dumps({"latest": "epoch-0002"}))
    manifest = json.loads((two_epochs / "epoch-0002" / "manifest.json").read_text())
    (two_epochs / "epoch-0002" / "manifest.json").write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(ValueError, match="format 99 is newer.*upgrade sklearn-imgcls"):
        _resume(two_epochs, *tiny)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("params.pt", "optimizer.pt", "history.json"):
        (legacy / name).write_bytes(b"")
    with pytest.raises(ValueError, match="lacks latest.json: it holds a checkpoint in the older layout"):
        _resume(legacy, *tiny)
    with pytest.raises(ValueError, match="lacks latest.json, so it holds no complete checkpoint"):
        _resume(tmp_path, *tiny)
    with pytest.raises(ValueError, match="no such folder"):
        _resume(tmp_path / "missing", *tiny)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": 0.01}, r"lr=0\.01 here but None in the checkpoint"),
        ({"augment": "light"}, r"augment='light' here but 'auto'"),
        ({"labels": "shuffled"}, "the labels y differ"),
        ({"labels": "fewer"}, "X holds 150 images here but held 160"),
        ({"labels": "strings"}, r"the classes are \['d0', 'd1'"),
    ],
)
def test_other_parameters_or_data_are_refused(two_epochs, tiny, change, message):
    X, y = tiny
    labels = change.pop("labels", None)
    if labels == "shuffled":
        y = np.random.default_rng(0).permutation(y)
    elif labels == "fewer":
        X, y = X[:150], y[:150]
    elif labels == "strings":
        y = np.array([f"d{v}" for v in y])
    with pytest.raises(ValueError, match="does not fit this estimator and data: " + message):
        _resume(two_epochs, X, y, **change)


def test_what_does_not_change_training_may_differ(two_epochs, tiny):
    X, y = tiny
    with pytest.warns(UserWarning, match="max_epochs=4 while it was trained for max_epochs=3"):
        clf = _resume(two_epochs, X, y, max_epochs=4, verbose=0, num_workers=0, random_state=7)
    assert len(clf.history_) == 4  # no validation split: a new random_state does not matter


def test_a_new_seed_with_a_validation_split_is_refused(tmp_path, tiny):
    X, y = tiny
    _interrupted(tmp_path, X, y, validation_fraction=0.25)
    with pytest.raises(ValueError, match="validation split was drawn with another seed.*random_state"):
        _resume(tmp_path, X, y, validation_fraction=0.25, random_state=1)


def test_a_full_disk_keeps_the_previous_set(tmp_path, tiny, monkeypatch):
    X, y = tiny
    real = C.TrainingCheckpoint.save_model

    def save_or_fill_the_disk(self, net):
        if len(net.history) == 2:
            monkeypatch.setattr(C, "_write_file", _full_disk)
        real(self, net)

    monkeypatch.setattr(C.TrainingCheckpoint, "save_model", save_or_fill_the_disk)
    with pytest.raises(OSError, match=r"Cannot write .*epoch-0002': No space left on device; free some disk space"):
        CNNClassifier(**_params(), callbacks=[TrainingCheckpoint(str(tmp_path))]).fit(X, y)
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001", "latest.json"]  # no litter, epoch 1 still in force
    monkeypatch.undo()
    assert len(_resume(tmp_path, X, y).history_) == 3


def _full_disk(path, data):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


_KILLED_WHILE_SAVING = textwrap.dedent(
    """
    import contextlib, os, signal, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from sklearn.datasets import load_digits
    import sklearn_imgcls.checkpoints as C
    from sklearn_imgcls import CNNClassifier

    real = C.atomic_folder

    @contextlib.contextmanager
    def killed_in_epoch_2(path):
        with real(path) as temporary:
            yield temporary
            if path.endswith("epoch-0002"):  # history.json half written, then kill -9
                open(os.path.join(temporary, "history.json"), "w").write('[{"epoch": 1, "train_')
                os.kill(os.getpid(), signal.SIGKILL)

    C.atomic_folder = killed_in_epoch_2
    X, y = load_digits(return_X_y=True)
    CNNClassifier(preset="fast", max_epochs=3, random_state=0, image_shape=(1, 8, 8),
                  callbacks=[C.TrainingCheckpoint(sys.argv[1])]).fit(X[:160] / 16.0, y[:160])
    """
)


def test_kill_9_while_saving_loses_only_that_epoch(tmp_path, tiny):
    X, y = tiny
    result = subprocess.run([sys.executable, "-c", _KILLED_WHILE_SAVING, str(tmp_path)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = sorted(os.listdir(tmp_path))
    assert left[1:] == ["epoch-0001", "latest.json"] and left[0].startswith(".epoch-0002.partial-")
    clf = CNNClassifier(**_params(), callbacks=[TrainingCheckpoint(str(tmp_path))])
    clf.fit(X, y, resume_from=str(tmp_path))
    assert len(clf.history_) == 3
    assert sorted(os.listdir(tmp_path)) == ["epoch-0003", "latest.json"]  # the killed writer's temporary is gone


def test_the_callback_pickles_clones_and_serves_skorchs_loader(tmp_path, tiny):
    X, y = tiny
    callback = checkpoint_callback(str(tmp_path))
    assert isinstance(callback, TrainingCheckpoint) and callback.get_params() == {"dirname": str(tmp_path)}
    clf = CNNClassifier(**_params(max_epochs=1), callbacks=[callback]).fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X[:5]), clf.predict_proba(X[:5]))
    cloned = clone(clf)
    assert cloned.callbacks[0] is not callback and cloned.callbacks[0].dirname == str(tmp_path)
    # skorch's own loading reads the latest set
    net = clone(clf).fit(X, y).net_
    torch.nn.init.zeros_(next(net.module_.parameters()))
    net.load_params(checkpoint=callback)
    assert _same_weights(clf, type("Fitted", (), {"net_": net})())


@pytest.fixture
def png_folder(tmp_path, digits):
    X, y = digits
    root = tmp_path / "pngs"
    for digit in (0, 1):
        (root / str(digit)).mkdir(parents=True)
        for i in np.flatnonzero(y == digit)[:20]:
            Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(root / str(digit) / f"{i}.png")
    return root


def test_cli_resume_continues_from_the_checkpoint(tmp_path, png_folder, monkeypatch, capsys):
    from sklearn_imgcls.cli.main import main

    out = str(tmp_path / "model")
    args = ["train", str(png_folder), "--out", out, "--quiet", "--param", "preset=fast", "--param", "max_epochs=3",
            "--param", "random_state=0", "--param", "num_workers=0", "--param", "batch_size=16"]
    real = C.TrainingCheckpoint.save_model

    def save_then_ctrl_c(self, net):
        real(self, net)
        if len(net.history) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(C.TrainingCheckpoint, "save_model", save_then_ctrl_c)
    assert main(args) == 130  # saved, but not finished: scripts can tell (128 + SIGINT)
    printed = capsys.readouterr().out
    assert "for 1 epoch(s)" in printed
    # what was trained (the preset's backbone and length), read from the fitted attributes
    assert "trained CNNClassifier(simple_cnn)" in printed and "stopped before max_epochs=3" in printed
    assert os.path.isfile(os.path.join(out + ".checkpoint", "epoch-0001", "manifest.json"))
    monkeypatch.undo()
    assert main(args[:-2] + ["--param", "batch_size=8", "--resume"]) == 2
    assert "does not fit this estimator and data: batch_size=8 here but 16 in the checkpoint" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert "for 3 epoch(s)" in capsys.readouterr().out
    assert not os.path.exists(out + ".checkpoint")  # finished: the checkpoint is removed


def test_the_resume_reader_is_internal_and_reexported():
    # _core/resume.py is what the estimator's fit uses; it must not reach up into the public modules
    code = ("import sys, sklearn_imgcls._core.resume as R; "
            "print(sorted(m for m in sys.modules if m.startswith('sklearn_imgcls.') and '._core' not in m "
            "and '.plugin' not in m and '.builtin' not in m))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    from sklearn_imgcls._core import resume as R

    for name in ("FORMAT_VERSION", "describe_training", "restore_checkpoint", "training_fingerprint"):
        assert getattr(C, name) is getattr(R, name)
