"""Pickles of fitted estimators: device-independent, lean, and still trainable after loading."""

from __future__ import annotations

import copy
import io
import os
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate

from sklearn_imgcls import CNNClassifier, TransferClassifier
from sklearn_imgcls._core.data import as_image_data

FAST = {"image_shape": (1, 8, 8), "preset": "fast", "max_epochs": 1, "random_state": 0}


def _cnn():
    return CNNClassifier(**FAST)


def _transfer():
    return TransferClassifier("simple_cnn", weights=None, image_shape=(1, 8, 8), max_epochs=2, freeze="backbone",
                              fine_tune_epochs=1, random_state=0)


def _device_tensors(net) -> list[torch.Tensor]:
    """The tensors a fit on CUDA places there: module, loss and optimizer state."""
    tensors = list(net.module_.state_dict().values()) + list(net.criterion_.state_dict().values())
    tensors += [value for state in net.optimizer_.state.values() for value in state.values() if torch.is_tensor(value)]
    return tensors


def _tagging_as_cuda(monkeypatch, tensors) -> None:
    """Make pickle tag the storages of ``tensors`` 'cuda:0' (as on a GPU machine), the others as usual."""
    on_cuda = {tensor.untyped_storage().data_ptr() for tensor in tensors}
    tag = torch.serialization.location_tag
    monkeypatch.setattr(torch.serialization, "location_tag",
                        lambda storage: "cuda:0" if storage.data_ptr() in on_cuda else tag(storage))


def test_the_cuda_simulation_is_real():
    # a tensor pickled under the simulation cannot be unpickled here: the test below means something
    tensor = torch.zeros(2)
    with pytest.MonkeyPatch.context() as patch:
        _tagging_as_cuda(patch, [tensor])
        payload = pickle.dumps(tensor)
        untouched = pickle.dumps(torch.ones(2))
    assert not torch.cuda.is_available()
    with pytest.raises(RuntimeError, match="CUDA device"):
        pickle.loads(payload)
    assert pickle.loads(untouched).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("make", [_cnn, _transfer], ids=["cnn", "transfer"])
def test_a_model_pickled_on_cuda_unpickles_on_a_cpu_only_machine(make, digits_small):
    X, y = digits_small
    clf = make().fit(X, y)
    expected = clf.predict_proba(X)
    clf.net_.device = "cuda"  # what a fit with device='auto' on a GPU machine records
    with pytest.MonkeyPatch.context() as patch:
        _tagging_as_cuda(patch, _device_tensors(clf.net_))
        payload = pickle.dumps(clf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch warns that it loads onto the CPU instead of CUDA
        restored = pickle.loads(payload)
    assert str(restored.net_.device) == "cpu"
    np.testing.assert_array_equal(restored.predict_proba(X), expected)


@pytest.mark.parametrize("make", [_cnn, _transfer], ids=["cnn", "transfer"])
def test_round_trip_keeps_predictions_and_training_goes_on(make, digits_small):
    X, y = digits_small
    clf = make().fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    net = restored.net_
    # the constructor argument and the initialised module are one object again, as before pickling
    assert net.module is net.module_ and net.criterion is net.criterion_
    assert all(p.grad is None for p in net.module_.parameters())
    assert len(net.optimizer_.state) == 0  # a fresh optimizer state ...
    assert clf.net_.optimizer_.state  # ... while the original keeps its own
    epochs = len(net.history)
    dataset = as_image_data(X, restored.image_shape_).dataset(torch.as_tensor(np.searchsorted(restored.classes_, y)))
    net.partial_fit(dataset, None, epochs=1)
    assert len(net.history) == epochs + 1 and len(net.optimizer_.state) > 0
    assert not np.array_equal(restored.predict_proba(X), clf.predict_proba(X))  # it trained
    refitted = restored.fit(X, y)
    np.testing.assert_allclose(refitted.predict_proba(X), make().fit(X, y).predict_proba(X), atol=1e-6)


def test_pickle_is_not_much_larger_than_the_safetensors_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (64, 28 * 28), dtype=np.uint8)
    y = np.arange(64) % 10
    clf = CNNClassifier(image_shape=(1, 28, 28), max_epochs=1, random_state=0).fit(X, y)  # the default model
    weights = os.path.getsize(clf.save(str(tmp_path / "model.safetensors")))
    pickled = len(pickle.dumps(clf))
    assert pickled <= 1.3 * weights, (pickled, weights)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    assert buffer.tell() <= 1.3 * weights


def test_deepcopy_and_clone(digits_small):
    X, y = digits_small
    clf = _cnn().fit(X, y)
    expected = clf.predict_proba(X)
    twin = copy.deepcopy(clf)
    np.testing.assert_array_equal(twin.predict_proba(X), expected)
    assert twin.net_.module_ is not clf.net_.module_ and twin.net_.module is twin.net_.module_
    twin.net_.partial_fit(as_image_data(X, (1, 8, 8)).dataset(torch.as_tensor(9 - y)), None, epochs=1)
    assert not np.array_equal(twin.predict_proba(X), expected)
    np.testing.assert_array_equal(clf.predict_proba(X), expected)  # training the copy leaves the original alone
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "net_")


def test_fitted_models_travel_back_from_loky_workers(digits_small):
    X, y = digits_small
    results = cross_validate(_cnn(), X, y, cv=2, n_jobs=2, return_estimator=True, return_indices=True,
                             error_score="raise")
    for fitted, train in zip(results["estimator"], results["indices"]["train"]):
        assert fitted.net_.module is fitted.net_.module_
        here = _cnn().fit(X[train], y[train])
        np.testing.assert_allclose(fitted.predict_proba(X), here.predict_proba(X), atol=1e-5)
    search = GridSearchCV(_transfer(), {"lr": [1e-3, 3e-3]}, cv=2, n_jobs=2, error_score="raise").fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict_proba(X), search.predict_proba(X))
