"""Multi-label models in scikit-learn's tools, in model files, ONNX and resumed fits."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.preprocessing import MultiLabelBinarizer
from skorch.callbacks import Callback

from sklearn_imgcls import CNNClassifier, load
from sklearn_imgcls.checkpoints import TrainingCheckpoint

LABELS = ("even", "high", "round")  # digit % 2 == 0, digit >= 5, digit in {0, 6, 8, 9}


def label_sets(digits: np.ndarray) -> list[tuple[str, ...]]:
    """The labels of each digit: multi-label by construction (0 is even and round, 7 only high, 1 none)."""
    rules = (digits % 2 == 0, digits >= 5, np.isin(digits, [0, 6, 8, 9]))
    return [tuple(name for name, rule in zip(LABELS, column) if rule) for column in zip(*rules)]


@pytest.fixture(scope="module")
def data(digits_small):
    X, digit = digits_small
    mlb = MultiLabelBinarizer().fit([LABELS])
    return X[:240], mlb.transform(label_sets(digit[:240])), mlb


def small(**extra):
    return CNNClassifier(**{"backbone": "simple_cnn", "max_epochs": 2, "batch_size": 40, "lr": 3e-3,
                            "precision": "fp32", "random_state": 0, **extra})


@pytest.fixture(scope="module")
def frame_model(data):
    X, Y, _ = data
    frame = pd.DataFrame(Y[:, ::-1], columns=["round", "high", "even"])  # columns unsorted: classes_ keeps them
    return small(threshold=[0.4, 0.5, 0.6]).fit(X, frame)


def test_multilabel_binarizer_round_trip(data):
    X, Y, mlb = data
    clf = small().fit(X, Y)
    predicted = mlb.inverse_transform(clf.predict(X))
    assert len(predicted) == len(X) and all(isinstance(labels, tuple) for labels in predicted)
    assert set().union(*predicted) <= set(LABELS)
    by_lists = small().fit(X, mlb.inverse_transform(Y))  # the label tuples themselves
    assert by_lists.classes_.tolist() == mlb.classes_.tolist()
    np.testing.assert_array_equal(by_lists.predict_proba(X), clf.predict_proba(X))
    subset_accuracy = float((clf.predict(X) == Y).all(axis=1).mean())
    assert clf.score(X, Y) == by_lists.score(X, mlb.inverse_transform(Y)) == pytest.approx(subset_accuracy)
    with pytest.raises(ValueError, match="not fitted on: 'odd'"):
        by_lists.score(X[:2], [("odd",), ()])


def test_grid_search_in_two_processes_and_cross_validation(data):
    X, Y, _ = data
    search = GridSearchCV(small(max_epochs=1), {"lr": [1e-3, 3e-3]}, scoring="f1_samples", cv=2, n_jobs=2)
    search.fit(X[:120], Y[:120])
    assert search.best_params_["lr"] in (1e-3, 3e-3) and 0.0 <= search.best_score_ <= 1.0
    assert search.best_estimator_.multilabel_ and search.predict(X[:3]).shape == (3, 3)
    scores = cross_val_score(small(max_epochs=1), X, Y, cv=KFold(2), scoring="jaccard_samples")
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_clone_and_pickle_keep_a_multilabel_model(frame_model, data):
    X, _, _ = data
    assert "multilabel_" not in vars(clone(frame_model))
    restored = pickle.loads(pickle.dumps(frame_model))
    assert restored.multilabel_ and restored.classes_.tolist() == ["round", "high", "even"]
    np.testing.assert_array_equal(restored.predict_proba(X), frame_model.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), frame_model.predict(X))


def test_model_file_round_trip(frame_model, data, tmp_path):
    X, _, _ = data
    path = frame_model.save(tmp_path / "multi.safetensors")
    loaded = load(path)
    assert loaded.multilabel_ is True and loaded.classes_.tolist() == ["round", "high", "even"]
    assert loaded.threshold == [0.4, 0.5, 0.6]
    np.testing.assert_array_equal(loaded.predict_proba(X), frame_model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), frame_model.predict(X))


def test_a_multiclass_model_file_has_no_multilabel_field(digits_small, tmp_path):
    from safetensors import safe_open

    X, y = digits_small
    path = small(max_epochs=1).fit(X[:100], y[:100]).save(tmp_path / "multiclass.safetensors")
    with safe_open(path, "pt") as f:
        assert "multilabel" not in f.metadata()
    assert load(path).multilabel_ is False


def test_onnx_export_gives_the_sigmoids(frame_model, data, tmp_path):
    import onnxruntime as ort  # in the test extra: a missing one fails here, never skips
    import onnx  # in the test extra: a missing one fails here, never skips
    X, _, _ = data
    path = frame_model.to_onnx(str(tmp_path / "multi.onnx"))
    (probabilities,) = ort.InferenceSession(path).run(None, {"images": X[:20].reshape(20, 1, 8, 8)})
    np.testing.assert_allclose(probabilities, frame_model.predict_proba(X[:20]), atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["multilabel"] == "true" and json.loads(meta["classes"]) == ["round", "high", "even"]


class _InterruptInEpoch(Callback):
    """Ctrl-C in the middle of the second epoch (skorch ends fit cleanly)."""

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and len(net.history) == 2:
            raise KeyboardInterrupt


def test_resume_from_a_checkpoint_of_a_multilabel_fit(data, tmp_path):
    X, Y, _ = data
    whole = small().fit(X, Y)
    small(callbacks=[TrainingCheckpoint(str(tmp_path)), _InterruptInEpoch()]).fit(X, Y)
    resumed = small().fit(X, Y, resume_from=str(tmp_path))
    assert len(resumed.history_) == 2
    np.testing.assert_array_equal(resumed.predict_proba(X), whole.predict_proba(X))
    other = Y.copy()
    other[:, 0] = 1 - other[:, 0]
    with pytest.raises(ValueError, match="the labels y differ"):
        small().fit(X, other, resume_from=str(tmp_path))


def test_lr_find_runs_on_multilabel_targets(data):
    X, Y, _ = data
    result = small().lr_find(X, Y, num_steps=4)
    assert len(result.lrs) == 4 and np.all(np.isfinite(result.losses))
