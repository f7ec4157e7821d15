"""Pickle-free saving: safetensors weights + JSON metadata, rebuilt without pretrained files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import sklearn_imgcls
from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls.datasets import load_digits_images
from sklearn_imgcls.weights import hub_checkpoint_path

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def images():
    X, y = load_digits_images()
    return X[:300], y[:300]


def test_cnn_round_trip_keeps_parameters_labels_history_and_probabilities(images, tmp_path):
    X, y = images
    clf = CNNClassifier("bn_cnn", max_epochs=2, random_state=0, class_weight={0: 2.0}, augment=[("rotate", {"degrees": 5})],
                        sampler=("oversample", {}), tta="flip_h").fit(X, y)
    path = clf.save(str(tmp_path / "model.safetensors"))
    loaded = sklearn_imgcls.load(path)
    assert type(loaded) is CNNClassifier and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert loaded.history_[:, "train_loss"] == clf.history_[:, "train_loss"]


def test_string_labels_and_transfer_from_a_deleted_checkpoint(images, tmp_path):
    X, y = images
    source = CNNClassifier("simple_cnn", max_epochs=1, random_state=0).fit(X, y)
    checkpoint = str(tmp_path / "pre.safetensors")
    source.save_weights(checkpoint)
    clf = TransferClassifier("simple_cnn", weights=checkpoint, max_epochs=1, fine_tune_epochs=0, random_state=0)
    clf.fit(X, NAMES[y])
    path = clf.save(str(tmp_path / "transfer.safetensors"))
    os.remove(checkpoint)  # the saved model must not need the pretrained file
    loaded = sklearn_imgcls.load(path)
    assert loaded.classes_.tolist() == clf.classes_.tolist() and loaded.frozen_parameters_ == clf.frozen_parameters_
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert (loaded.predict(X) == clf.predict(X)).all()


def test_transfer_from_torchvision_weights_loads_without_them(images, tmp_path, monkeypatch):
    from torchvision.models import MobileNet_V3_Small_Weights, get_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = MobileNet_V3_Small_Weights.DEFAULT
    target = hub_checkpoint_path(weights.url)
    os.makedirs(os.path.dirname(target))
    torch.manual_seed(0)
    torch.save(get_model("mobilenet_v3_small", weights=None).state_dict(), target)
    X, y = images
    clf = TransferClassifier("mobilenet_v3_small", weights="DEFAULT", input_size=(32, 32), max_epochs=1,
                             fine_tune_epochs=0, batch_size=100, random_state=0).fit(X[:100], y[:100])
    path = clf.save(str(tmp_path / "mobilenet.safetensors"))
    os.remove(target)
    loaded = sklearn_imgcls.load(path)
    np.testing.assert_allclose(loaded.predict_proba(X[:50]), clf.predict_proba(X[:50]), atol=1e-5)


def test_live_objects_and_foreign_files_are_refused(images, tmp_path):
    from safetensors.torch import save_file
    from skorch.callbacks import Callback

    X, y = images
    clf = CNNClassifier(max_epochs=1, callbacks=[Callback()]).fit(X, y)
    with pytest.raises(ValueError, match="set_params\\(callbacks=None\\)"):
        clf.save(str(tmp_path / "m.safetensors"))
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not written by sklearn_imgcls.save"):
        sklearn_imgcls.load(str(tmp_path / "plain.safetensors"))
    save_file({"w": torch.zeros(2)}, str(tmp_path / "evil.safetensors"),
              metadata={"format": "sklearn-imgcls-model/1", "estimator": "os.system", "params": json.dumps({})})
    with pytest.raises(ValueError, match="does not create"):
        sklearn_imgcls.load(str(tmp_path / "evil.safetensors"))
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04\x95not safetensors")
    with pytest.raises(ValueError, match="not a safetensors model file"):
        sklearn_imgcls.load(str(tmp_path / "model.pkl"))
    with pytest.raises(ValueError, match="No model file"):
        sklearn_imgcls.load(str(tmp_path / "missing.safetensors"))
