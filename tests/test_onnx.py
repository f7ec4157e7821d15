"""ONNX export: the exported graph gives the estimator's probabilities in onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls.datasets import load_digits_images

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


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
