"""Training through skorch's Hugging Face Accelerate integration (single CPU process)."""

from __future__ import annotations

import pickle

import numpy as np

from sklearn_imgcls import CNNClassifier

import accelerate  # noqa: F401 - the test extra installs it; a missing one fails here, it never skips


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


def test_the_epoch_table_has_no_colour_codes_when_not_a_terminal(digits_small, capsys):
    """Redirected output (logs, pipes) gets the plain table under an accelerator too, as without one."""
    from accelerate import Accelerator

    X, y = digits_small
    CNNClassifier("simple_cnn", image_shape=(1, 8, 8), max_epochs=2, verbose=1, random_state=0,
                  accelerator=Accelerator(cpu=True)).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "\x1b[" not in out

