"""ONNX export: the exported graph gives the estimator's probabilities in onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls.datasets import load_digits_images

import onnxruntime as ort  # in the test extra: a missing one fails here, never skips
import onnx  # in the test extra: a missing one fails here, never skips


@pytest.mark.parametrize(
    "estimator",
    # float32 models: the exported graph computes in float32, which bfloat16 predictions match only to ~1e-3
    [CNNClassifier("bn_cnn", max_epochs=2, precision="fp32", random_state=0),
     TransferClassifier("resnet18", weights=None, max_epochs=1, fine_tune_epochs=0, precision="fp32", random_state=0)],
    ids=["cnn-bn_cnn", "transfer-resnet18"],
)
def test_onnx_probabilities_match_predict_proba(estimator, tmp_path):
    X, y = load_digits_images()
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    estimator.fit(X[:300], labels[:300])
    path = estimator.to_onnx(str(tmp_path / "model.onnx"))
    session = ort.InferenceSession(path)
    images = (X[300:370, None] / 255).astype(np.float32)  # uint8 training images: feed pixels / 255
    (probabilities,) = session.run(None, {"images": images})
    np.testing.assert_allclose(probabilities, estimator.predict_proba(X[300:370]), atol=1e-4)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(meta["classes"]) == estimator.classes_.tolist()
    assert json.loads(meta["image_shape"]) == [1, 8, 8]


def test_export_needs_a_fitted_estimator(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CNNClassifier().to_onnx(str(tmp_path / "m.onnx"))


@pytest.fixture(scope="module")
def tiny_model():
    X, y = load_digits_images()
    return CNNClassifier("simple_cnn", max_epochs=1, precision="fp32", random_state=0).fit(X[:60], y[:60])


def test_onnx_export_is_one_self_contained_file(tiny_model, tmp_path):
    path = tiny_model.to_onnx(str(tmp_path / "model.onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no model.onnx.data copy, no temporary
    model = onnx.load(path, load_external_data=False)
    assert model.graph.initializer and all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
    (probabilities,) = ort.InferenceSession(path).run(None, {"images": np.zeros((3, 1, 8, 8), np.float32)})
    assert probabilities.shape == (3, 10)


def test_onnx_export_names_the_users_path_when_it_cannot_write(tiny_model, tmp_path):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "model.onnx"
    with pytest.raises(OSError, match=f"Cannot write '{target}'"):
        tiny_model.to_onnx(str(target))
    missing = tmp_path / "no" / "model.onnx"
    with pytest.raises(OSError, match=f"Cannot write '{missing}'.*does not exist"):
        tiny_model.to_onnx(str(missing))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
