"""Training through skorch's Hugging Face Accelerate integration (single CPU process)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sklearn_imgcls import CNNClassifier

accelerate = pytest.importorskip("accelerate")


def test_accelerated_fit_learns_predicts_and_pickles(digits_small, capsys):
    from accelerate import Accelerator

    X, y = digits_small
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=8, lr=5e-3, random_state=0,
                        accelerator=Accelerator(cpu=True), validation_fraction=0.2)
    clf.fit(X, y)
    assert type(clf.net_).__name__ == "AcceleratedImageNeuralNet"
    assert clf.net_.device is None and len(clf.history_) == 8
    assert clf.score(X, y) > 0.8
    assert capsys.readouterr().out == ""  # verbose=0 stays silent
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), atol=1e-6)
