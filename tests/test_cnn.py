"""CNNClassifier: the scikit-learn contract, training behaviour and user errors."""

from __future__ import annotations

import copy
import os
import pickle

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from skorch.callbacks import Callback

from sklearn_imgcls.plugin.hookspecs import PluginDeprecationWarning
from sklearn_imgcls import CNNClassifier
from sklearn_imgcls.plugin.registry import get_registry
from tests.plugins import tiny_linear

FAST = dict(image_shape=(1, 8, 8), preset="fast", lr_schedule="constant", max_epochs=3, lr=5e-3, random_state=0)


def test_learns_digits_and_predicts_original_string_labels(digits_small):
    X, y = digits_small
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = CNNClassifier(**{**FAST, "max_epochs": 8}).fit(X, names[y])
    assert list(clf.classes_) == sorted(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = clf.predict(X)
    assert set(predicted) <= set(names)
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, names[y]) > 0.9
    assert clf.n_features_in_ == 64 and clf.image_shape_ == (1, 8, 8)
    assert len(clf.history_) == 8


def test_same_seed_same_predictions_other_seed_differs(digits_small):
    X, y = digits_small
    a = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    b = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    c = CNNClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_change_the_global_torch_seed(digits_small):
    X, y = digits_small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_pickle_joblib_and_clone_round_trips(digits_small, tmp_path):
    X, y = digits_small
    clf = CNNClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict_proba(X), expected)
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "net_")
    fresh.set_params(lr=3e-3, backbone="bn_cnn")
    assert fresh.lr == 3e-3 and fresh.backbone == "bn_cnn"


def test_uint8_and_float_copies_give_the_same_predictions():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 6, 6, 3), dtype=np.uint8)
    y = (images[..., 0].mean(axis=(1, 2)) > 127).astype(int)
    clf = CNNClassifier(max_epochs=2, random_state=0).fit(images, y)
    np.testing.assert_allclose(
        clf.predict_proba(images), clf.predict_proba(images.astype(np.float32) / 255), atol=1e-5
    )
    assert clf.image_shape_ == (3, 6, 6)


class RecordWeights(Callback):
    """Keeps a copy of the module's weights after every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states_ = []

    def on_epoch_end(self, net, **kwargs):
        self.states_.append(copy.deepcopy(net.module_.state_dict()))


def test_early_stopping_restores_the_best_epoch(digits_small):
    X, y = digits_small
    recorder = RecordWeights()
    clf = CNNClassifier(
        **{**FAST, "max_epochs": 30, "lr": 0.05}, validation_fraction=0.25, early_stopping=2, callbacks=[recorder]
    ).fit(X, y)
    losses = clf.history_[:, "valid_loss"]
    assert len(losses) < 30, "training should have stopped early"
    best = int(np.argmin(losses))
    assert best < len(losses) - 1
    final = clf.net_.module_.state_dict()
    for name, value in recorder.states_[best].items():
        assert torch.equal(final[name], value), name


def test_scoring_is_tracked_per_epoch_on_the_validation_split(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**FAST, validation_fraction=0.2, scoring=["accuracy", "f1_macro"]).fit(X, y)
    for key in ("valid_accuracy", "valid_f1_macro", "valid_loss", "train_loss"):
        values = clf.history_[:, key]
        assert len(values) == 3
    assert all(0.0 <= v <= 1.0 for v in clf.history_[:, "valid_accuracy"])
    assert clf.history_[-1, "valid_accuracy"] > clf.history_[0, "valid_accuracy"] - 0.05


def test_verbose_levels(digits_small, capsys):
    X, y = digits_small
    CNNClassifier(**{**FAST, "max_epochs": 2}, verbose=0).fit(X, y)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    CNNClassifier(**{**FAST, "max_epochs": 2}, verbose=1).fit(X, y)
    table = capsys.readouterr().out
    assert "epoch" in table and "train_loss" in table
    assert len([line for line in table.splitlines() if line.strip().startswith(("1", "2"))]) == 2


def test_class_weight_reaches_the_loss(digits_small):
    X, y = digits_small
    keep = (y < 3) & ((y != 2) | (np.arange(len(y)) % 4 == 0))
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}, class_weight="balanced").fit(X[keep], y[keep])
    counts = np.bincount(y[keep])
    expected = len(y[keep]) / (3 * counts)
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), expected, rtol=1e-6)
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}, class_weight={2: 5.0}).fit(X[keep], y[keep])
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), [1.0, 1.0, 5.0])
    with pytest.raises(ValueError, match="class_weight names classes that are not in y"):
        CNNClassifier(**FAST, class_weight={7: 2.0}).fit(X[keep], y[keep])


@pytest.fixture
def counting_plugin():
    registry = get_registry()
    with pytest.warns(PluginDeprecationWarning):  # tiny_linear is written against the deprecated 0.1 hooks
        name = registry.register_plugin(tiny_linear, name="tiny_linear_test")
    tiny_linear.CALLS["augment"] = 0
    yield
    registry.unregister_plugin(name)


def test_plugin_backbone_and_augmentation_by_name(digits_small, counting_plugin):
    X, y = digits_small
    clf = CNNClassifier("tiny_linear", **FAST, batch_size=100, augment=["counting"]).fit(X, y)
    assert tiny_linear.CALLS["augment"] == 3 * 4  # 3 epochs x 4 batches, training only
    clf.predict(X)
    assert tiny_linear.CALLS["augment"] == 12
    assert isinstance(clf.net_.module_.backbone, torch.nn.Sequential)
    assert pickle.loads(pickle.dumps(clf)).score(X, y) == clf.score(X, y)


def test_samplers_and_builtin_augmentations_train(digits_small):
    X, y = digits_small
    for extra in (dict(sampler="oversample"), dict(augment=[("flip_h", {"p": 0.1}), ("random_crop", {"padding": 1})])):
        clf = CNNClassifier(**{**FAST, "max_epochs": 6}, **extra).fit(X, y)
        assert clf.score(X, y) > 0.5


def write_pngs(folder, images):
    paths = []
    for i, image in enumerate(images):
        path = os.path.join(folder, f"{i:04d}.png")
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def test_trains_and_predicts_from_image_files(digits_small, tmp_path):
    X, y = digits_small
    images = (X.reshape(-1, 8, 8) * 255).round().astype(np.uint8)
    paths = write_pngs(tmp_path, images)
    clf = CNNClassifier(max_epochs=8, random_state=0).fit(paths, y)
    assert clf.image_shape_ == (1, 8, 8)
    from_files = clf.predict_proba(paths)
    np.testing.assert_allclose(from_files, clf.predict_proba(images), atol=1e-6)
    assert clf.score(paths, y) > 0.85


def test_issue_example_pipeline_grid_search_runs_in_two_processes(digits_small, tmp_path):
    X, y = digits_small
    X = X * 16.0  # the raw digits scale, as in the README example
    pipe = make_pipeline(
        FunctionTransformer(lambda a: a / 16.0),
        CNNClassifier(image_shape=(1, 8, 8), max_epochs=2, random_state=0, callbacks=[ThreadProbe(str(tmp_path))]),
    )
    search = GridSearchCV(
        pipe, {"cnnclassifier__backbone": ["simple_cnn", "resnet18"], "cnnclassifier__lr": [1e-3, 3e-3]},
        cv=2, n_jobs=2,
    )
    search.fit(X, y)
    assert search.best_params_["cnnclassifier__backbone"] in {"simple_cnn", "resnet18"}
    assert 0.0 <= search.score(X, y) <= 1.0
    threads = [int(p.read_text()) for p in tmp_path.iterdir() if p.name.startswith("threads-")]
    worker_threads = [t for p, t in zip(sorted(tmp_path.iterdir()), threads)]
    assert len(threads) >= 8 and max(worker_threads) <= os.cpu_count()
    # joblib limits each of the 2 worker processes to cpu_count // 2 torch threads
    assert min(threads) <= max(1, os.cpu_count() // 2)


class ThreadProbe(Callback):
    """Writes torch's thread count of the fitting process to a file."""

    def __init__(self, folder):
        self.folder = folder

    def on_train_begin(self, net, **kwargs):
        path = os.path.join(self.folder, f"threads-{os.getpid()}-{id(net)}")
        with open(path, "w") as handle:
            handle.write(str(torch.get_num_threads()))


def test_cross_val_score_works(digits_small):
    X, y = digits_small
    scores = cross_val_score(CNNClassifier(**FAST), X, y, cv=2)
    assert scores.shape == (2,) and (scores > 0.5).all()


@pytest.mark.parametrize(
    "params, error, pattern",
    [
        (dict(lr=-1), ValueError, "lr must be a positive number"),
        (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1"),
        (dict(max_epochs=1.5), TypeError, "max_epochs must be an integer"),
        (dict(validation_fraction=1.5), ValueError, "validation_fraction must be None or a number"),
        (dict(early_stopping=3), ValueError, "early_stopping needs a validation split"),
        (dict(scoring="accuracy"), ValueError, "scoring is tracked on the validation split"),
        (dict(scoring="bogus", validation_fraction=0.2), ValueError, "'bogus' is not a scikit-learn scorer"),
        (dict(device="tpu"), ValueError, "device must be"),
        (dict(device="cuda"), ValueError, "CUDA is not available"),
        (dict(optimizer="nadamax"), ValueError, "optimizer must be one of"),
        (dict(class_weight="auto"), ValueError, "class_weight must be None"),
        (dict(backbone="resnet19"), ValueError, "Did you mean 'resnet18'"),
        (dict(loss="focal_typo"), ValueError, "Unknown loss 'focal_typo'"),
        (dict(augment=5), TypeError, "augment must be"),
        (dict(augment=["flip_x"]), ValueError, "Unknown augmentation 'flip_x'"),
        (dict(sampler="smote_typo"), ValueError, "Unknown sampler"),
        (dict(backbone_params={"depth": 3}), TypeError, "Cannot build backbone 'simple_cnn'.*depth"),
        (dict(loss_params=[1]), TypeError, "loss_params must be a dict"),
        (dict(image_shape=(3, 8, 8)), ValueError, r"image_shape=\(3, 8, 8\) describes 192 values"),
    ],
)
def test_invalid_parameters_are_reported_in_fit(digits_small, params, error, pattern):
    if params.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = digits_small
    clf = CNNClassifier(**{**FAST, **params})
    with pytest.raises(error, match=pattern):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


def test_label_errors(digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match="only one class"):
        CNNClassifier(**FAST).fit(X[:5], np.zeros(5))
    with pytest.raises(ValueError, match="X holds 400 images but y has 399 labels"):
        CNNClassifier(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        CNNClassifier(**FAST).fit(X, np.linspace(0, 1, len(X)))


def test_predict_checks_the_fitted_shape(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    with pytest.raises(ValueError, match="X has 65 features, but CNNClassifier is expecting 64"):
        clf.predict(np.zeros((2, 65)))
    with pytest.raises(ValueError, match="matches image_shape"):
        clf.predict(np.zeros((2, 3, 8, 8)))
    unfitted = CNNClassifier()
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        unfitted.predict(X)


def test_bad_backbone_params_and_optimizer_params_are_named_not_raw_library_errors(digits_small):
    X, y = digits_small
    with pytest.raises(TypeError, match=r"Cannot build backbone 'bn_cnn' with \{'channels': 'abc'\}"):
        CNNClassifier("bn_cnn", backbone_params={"channels": "abc"}, **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"optimizer_params has \['momentum'\] that Adam does not take; it accepts .*betas"):
        CNNClassifier(optimizer_params={"momentum": 0.9}, **FAST).fit(X, y)
    clf = CNNClassifier(optimizer="sgd", optimizer_params={"momentum": 0.9}, **FAST).fit(X, y)  # SGD takes it
    assert clf.net_.optimizer_.param_groups[0]["momentum"] == 0.9


def test_bn_cnn_takes_one_convolution_count_per_block(digits_small):
    from torch import nn

    from sklearn_imgcls.builtin.cnn_backbones import BatchNormCNN

    module = BatchNormCNN(1, 10, (28, 28), channels=(32, 64, 128), convs_per_block=(1, 2, 2), hidden=256)
    convs = [layer for layer in module.features if isinstance(layer, nn.Conv2d)]
    assert [(conv.in_channels, conv.out_channels) for conv in convs] == [(1, 32), (32, 64), (64, 64), (64, 128),
                                                                         (128, 128)]
    assert module(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    X, y = digits_small  # a list, as JSON and the command line give it
    clf = CNNClassifier("bn_cnn", backbone_params={"channels": [8, 16], "convs_per_block": [1, 2]}, **FAST).fit(X, y)
    assert clf.score(X, y) > 0.2  # 3 epochs of 4 steps: learning (chance is 0.1), not converged
    for bad in ([1], [1, 0], 0):
        with pytest.raises(ValueError, match=r"convs_per_block must be an integer >= 1 or one such integer per block "
                                             r"\(2 blocks") as raised:
            CNNClassifier("bn_cnn", backbone_params={"channels": [8, 16], "convs_per_block": bad}, **FAST).fit(X, y)
        assert ".." not in str(raised.value)  # the builder's sentence ends once inside the registry's
