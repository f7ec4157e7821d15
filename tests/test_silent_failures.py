"""No silent wrong answers (issue #14, item 3): predict-time parameters, non-finite outputs, divergence, labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.divergence import TrainingDivergedError


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:200] / 16).reshape(-1, 8, 8).astype(np.float32), y[:200]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return CNNClassifier(preset="fast", max_epochs=1, random_state=0).fit(X, y)


@pytest.mark.parametrize("batch_size, error", [(-1, ValueError), (0, ValueError), ("abc", TypeError), (2.5, TypeError)])
def test_predict_validates_batch_size(fitted, digits, batch_size, error):
    X, _ = digits
    import copy

    model = copy.deepcopy(fitted).set_params(batch_size=batch_size)
    with pytest.raises(error, match=f"batch_size must be an integer >= 1, got {batch_size!r}"):
        model.predict_proba(X)


def test_overflowing_input_is_an_error_naming_rows_and_cause(fitted, digits):
    X, _ = digits
    images = X[:4].copy()
    images[[1, 3]] = 3e38
    with pytest.raises(ValueError, match=r"NaN or infinite for 2 of 4 image\(s\) \(rows 1, 3\).*overflow.*3e\+38"):
        fitted.predict(images)
    assert fitted.predict(X[:4]).shape == (4,)  # the model itself is fine


def test_a_model_with_nan_weights_refuses_to_predict(fitted, digits):
    import copy

    X, _ = digits
    broken = copy.deepcopy(fitted)
    with torch.no_grad():
        next(broken.net_.module_.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=r"weights hold 1 non-finite value"):
        broken.predict(X[:3])


def test_diverging_training_stops_with_a_message_naming_lr(digits):
    X, y = digits
    with pytest.raises(TrainingDivergedError, match=r"Training diverged in epoch 1.*lr=1e\+06"):
        CNNClassifier(lr=1e6, max_epochs=3, random_state=0).fit(X, y)
    assert issubclass(TrainingDivergedError, ValueError)


def test_a_sane_fit_is_not_stopped(digits):
    X, y = digits
    model = CNNClassifier(preset="fast", max_epochs=3, lr=1e-2, random_state=0).fit(X, y)
    assert len(model.history_) == 3


def test_mixed_label_types_get_our_error(digits):
    X, y = digits
    labels = y.astype(object)
    labels[::2] = [str(v) for v in y[::2]]
    with pytest.raises(ValueError, match=r"y mixes label types: number \(0\) and string \('.'\)|"
                                         r"y mixes label types: string \('0'\) and number"):
        CNNClassifier(max_epochs=1).fit(X, labels)


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_missing_labels_are_named(digits, missing):
    X, y = digits
    labels = y.astype(object)
    labels[5] = missing
    with pytest.raises(ValueError, match=r"y has 1 missing label\(s\) \(None or NaN\) at position\(s\) 5"):
        CNNClassifier(max_epochs=1).fit(X, labels)
    with pytest.raises(ValueError, match=r"missing label\(s\).*position\(s\) 7"):
        CNNClassifier(max_epochs=1).fit(X, np.where(np.arange(len(y)) == 7, np.nan, y.astype(float)))


def test_messages_show_plain_values_not_numpy_reprs(digits):
    X, _ = digits
    with pytest.raises(ValueError) as info:
        CNNClassifier(max_epochs=1).fit(X[:10], np.array(["only"] * 10))
    assert "('only')" in str(info.value) and "np.str_" not in str(info.value)


def test_num_threads_is_applied_during_fit_and_predict_and_restored(digits):
    from skorch.callbacks import Callback

    X, y = digits
    seen = []

    class RecordThreads(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    model = CNNClassifier(preset="fast", max_epochs=1, num_threads=target, callbacks=[RecordThreads()],
                          random_state=0).fit(X, y)
    assert seen == [target] and torch.get_num_threads() == before
    assert model.predict(X[:4]).shape == (4,) and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads must be an integer >= 1"):
        CNNClassifier(num_threads=0).fit(X, y)


def test_same_seed_and_threads_give_the_same_predictions(digits):
    X, y = digits
    first = CNNClassifier(preset="fast", max_epochs=2, num_threads=1, random_state=0).fit(X, y)
    second = CNNClassifier(preset="fast", max_epochs=2, num_threads=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_mixed_label_types_in_a_plain_list_are_refused_before_numpy_merges_them(digits):
    X, y = digits
    labels = [int(v) if i % 2 else str(v) for i, v in enumerate(y)]  # np.asarray would make them all strings
    with pytest.raises(ValueError, match="y mixes label types"):
        CNNClassifier(max_epochs=1).fit(X, labels)


@pytest.mark.parametrize("weight", [-1.0, 0, float("nan")])
def test_class_weight_values_must_be_positive(digits, weight):
    X, y = digits
    with pytest.raises(ValueError, match=r"class_weight must give every class a positive, finite weight"):
        CNNClassifier(max_epochs=1, class_weight={0: weight}).fit(X, y)


def test_unknown_class_weight_names_are_plain_values(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"not in y: \['zz'\]"):
        CNNClassifier(max_epochs=1, class_weight={"zz": 2}).fit(X, y)
