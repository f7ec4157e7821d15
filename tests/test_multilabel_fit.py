"""Multi-label fits: the target forms, the multi-label losses, thresholds, and what is refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from torchvision.ops import sigmoid_focal_loss

from sklearn_imgcls import CNNClassifier, TransferClassifier, build_loss
from sklearn_imgcls._core.iterators import augment_batch
from sklearn_imgcls._core.targets import encode_labels
from sklearn_imgcls.plugin import LossSpec, hookimpl
from sklearn_imgcls.plugin.registry import get_registry

NAMES = np.array(["even", "high", "round"])  # digit % 2 == 0, digit >= 5, digit in {0, 6, 8, 9}


def indicator(digits: np.ndarray) -> np.ndarray:
    """The three labels of each digit as an (n, 3) 0/1 matrix: multi-label by construction."""
    return np.stack([digits % 2 == 0, digits >= 5, np.isin(digits, [0, 6, 8, 9])], axis=1).astype(np.int64)


def label_lists(Y: np.ndarray) -> list[list[str]]:
    return [list(NAMES[row.astype(bool)]) for row in Y]


@pytest.fixture(scope="module")
def data(digits_small):
    X, digit = digits_small
    return X[:200], indicator(digit[:200])


def small(**extra):
    return CNNClassifier(**{"backbone": "simple_cnn", "max_epochs": 1, "batch_size": 50, "precision": "fp32",
                            "random_state": 0, **extra})


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    return small(max_epochs=3, lr=3e-3).fit(X, Y)


def test_indicator_matrix_gives_sigmoid_probabilities_and_an_indicator_prediction(fitted, data):
    X, Y = data
    assert fitted.multilabel_ is True and fitted.classes_.tolist() == [0, 1, 2]
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float64
    assert ((proba > 0) & (proba < 1)).all() and not np.allclose(proba.sum(axis=1), 1.0)  # independent, not softmax
    module = fitted.net_.module_.eval()
    with torch.inference_mode():
        logits = module(torch.as_tensor(X[:5]).reshape(5, 1, 8, 8))
    np.testing.assert_allclose(proba[:5], torch.sigmoid(logits).numpy(), atol=1e-6)
    predicted = fitted.predict(X)
    assert predicted.dtype == np.int64 and predicted.shape == (len(X), 3)
    np.testing.assert_array_equal(predicted, (proba >= 0.5).astype(int))
    assert type(fitted.net_.criterion_).__name__ == "BinaryCrossEntropyLoss"  # the default for multi-label y
    assert (predicted == Y).mean() > 0.6  # three epochs learn something


def test_threshold_follows_the_current_value_and_may_be_per_label(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    try:
        fitted.set_params(threshold=0.9)
        np.testing.assert_array_equal(fitted.predict(X), (proba >= 0.9).astype(int))
        fitted.set_params(threshold=np.array([0.2, 0.5, 0.8]))
        np.testing.assert_array_equal(fitted.predict(X), (proba >= [0.2, 0.5, 0.8]).astype(int))
        for bad, match in [(0.0, r"\(0, 1\)"), (1.5, r"\(0, 1\)"), ([0.5, 0.5], "one per label"),
                           ("high", "float"), (True, "float")]:
            fitted.set_params(threshold=bad)
            with pytest.raises((ValueError, TypeError), match=match):
                fitted.predict(X)
    finally:
        fitted.set_params(threshold=0.5)


def test_a_bad_threshold_is_refused_before_training(data):
    X, Y = data
    with pytest.raises(ValueError, match="threshold has shape"):
        small(threshold=[0.5, 0.5]).fit(X, Y)


def test_every_target_form_gives_the_same_matrix(data):
    _, Y = data
    n = len(Y)
    expected_classes = {"lists": ["even", "high", "round"], "frame": ["round", "even", "high"]}
    forms = {
        "numpy": Y, "bool": Y.astype(bool), "float": Y.astype(float), "nested lists": Y.tolist(),
        "sparse": scipy.sparse.csr_matrix(Y),
        "lists": label_lists(Y), "sets": [set(labels) for labels in label_lists(Y)],
        "series": pd.Series(label_lists(Y)),
        "frame": pd.DataFrame(Y[:, [2, 0, 1]], columns=["round", "even", "high"]),
    }
    for name, y in forms.items():
        classes, encoded = encode_labels(y, n, "CNNClassifier")
        assert encoded.dtype == np.float32 and encoded.shape == (n, 3), name
        order = {"frame": [2, 0, 1]}.get(name, [0, 1, 2])
        np.testing.assert_array_equal(encoded, Y[:, order], err_msg=name)
        assert classes.tolist() == expected_classes.get(name, [0, 1, 2] if name not in ("sets", "series") else
                                                        ["even", "high", "round"]), name
    # a 1-D y is multi-class exactly as before
    classes, encoded = encode_labels(np.array(["b", "a", "b"]), 3, "CNNClassifier")
    assert classes.tolist() == ["a", "b"] and encoded.tolist() == [1, 0, 1] and encoded.dtype == np.int64


@pytest.mark.parametrize("y, match", [
    (np.array([[0, 2], [1, 1], [0, 1]]), r"not a 0/1 indicator matrix.*'multiclass-multioutput'"),
    (np.array([[0.5, 1.0], [1.0, 0.0], [0.0, 1.0]]), "not a 0/1 indicator matrix"),
    (np.array([[0, 1], [1, 0]]), "X holds 3 images but y has 2 rows"),
    ([["a"], ["a", "b"]], "X holds 3 images but y has 2 label collections"),
    ([[0, 1], [1], [0, 1]], "different lengths.*sets"),
    ([["cat"], ["cat"], []], r"names 1 label\(s\) \('cat'\).*at least 2"),
    ([["cat"], [1], []], "mixes label types"),
    ([["cat"], [None], ["dog"]], "missing label"),
    (pd.DataFrame([[0, 1], [1, 0], [1, 1]], columns=["a", "a"]), "name a label twice"),
], ids=["values-0-2", "fractions", "row-count", "collection-count", "ragged", "one-label", "mixed-types", "none",
        "duplicate-columns"])
def test_malformed_multilabel_targets_are_refused_by_name(y, match):
    with pytest.raises(ValueError, match=match):
        encode_labels(y, 3, "CNNClassifier")


def test_a_constant_label_warns_naming_it(data):
    X, Y = data
    Y = Y.copy()
    Y[:, 1] = 0
    with pytest.warns(UserWarning, match=r"never set: \[1\]"):
        small().fit(X, Y)


def test_multiclass_loss_with_multilabel_y_and_the_reverse_are_refused(data, digits_small):
    X, Y = data
    with pytest.raises(ValueError, match="multi-class loss.*binary_cross_entropy, binary_focal"):
        small(loss="focal").fit(X, Y)
    with pytest.raises(ValueError, match="'binary_focal'.*multi-label loss.*one label per image"):
        small(loss="binary_focal").fit(*digits_small)


def test_multilabel_losses_match_torch_and_torchvision():
    logits = torch.tensor([[2.0, -1.0, 0.3], [0.5, 0.1, -2.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    pos_weight = torch.tensor([1.0, 3.0, 0.5])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
    assert torch.isclose(build_loss("binary_cross_entropy", class_weight=pos_weight)(logits, targets), expected)
    focal = build_loss("binary_focal", gamma=2.0, alpha=0.25)
    assert torch.isclose(focal(logits, targets), sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0).mean())
    focal.reduction = "none"  # one loss per image: the mean over its labels
    torch.testing.assert_close(focal(logits, targets),
                               sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0, reduction="none").mean(1))
    with pytest.raises(ValueError, match="alpha"):
        build_loss("binary_focal", alpha=1.5)


def test_class_weight_becomes_each_labels_positive_weight(data):
    X, Y = data
    clf = small(class_weight="balanced").fit(X, Y)
    positives = Y.sum(axis=0)
    np.testing.assert_allclose(clf.net_.criterion_.pos_weight.numpy(), (len(Y) - positives) / positives, rtol=1e-6)
    clf = small(loss="binary_focal", class_weight={2: 4.0}).fit(X, Y)
    assert clf.net_.criterion_.pos_weight.tolist() == [1.0, 1.0, 4.0]
    with pytest.raises(ValueError, match=r"labels that are not in y: \['cat'\]"):
        small(class_weight={"cat": 2.0}).fit(X, Y)


def test_sample_weight_is_honoured(data):
    X, Y = data
    plain = small().fit(X, Y).predict_proba(X)
    uniform = small().fit(X, Y, sample_weight=np.full(len(X), 3.0)).predict_proba(X)
    np.testing.assert_allclose(uniform, plain, atol=1e-5)  # a weighted mean of equal weights is the mean
    skewed = small().fit(X, Y, sample_weight=np.where(Y[:, 0] == 1, 5.0, 0.2)).predict_proba(X)
    assert np.abs(skewed - plain).max() > 1e-3


@pytest.mark.parametrize("params, match", [
    ({"sampler": "oversample"}, "sampler='oversample' balances the classes.*class_weight='balanced'"),
    ({"sampler": "smote"}, "sampler='smote' balances the classes.*class_weight='balanced'"),
    ({"adversarial": {"method": "fgsm", "eps": 0.1}}, "adversarial training.*multi-label"),
    ({"validation_fraction": 0.2, "scoring": "f1"}, r"'f1' cannot score multi-label.*'f1_samples'"),
    ({"validation_fraction": 0.2, "scoring": ["accuracy", "balanced_accuracy"]}, "'balanced_accuracy' cannot score"),
], ids=["oversample", "smote", "adversarial", "f1", "balanced_accuracy"])
def test_what_has_no_multilabel_meaning_is_refused_before_training(data, params, match):
    X, Y = data
    with pytest.raises(ValueError, match=match):
        small(**params).fit(X, Y)


def test_validation_split_scores_multilabel_metrics(data):
    X, Y = data
    clf = small(max_epochs=2, validation_fraction=0.25, scoring=["f1_samples", "accuracy"], early_stopping=3).fit(X, Y)
    row = clf.history_[-1]
    assert 0.0 <= row["valid_f1_samples"] <= 1.0 and 0.0 <= row["valid_accuracy"] <= 1.0
    assert clf.net_.predict(torch.as_tensor(X[:4]).reshape(4, 1, 8, 8)).shape == (4, 3)  # the net's validation predictions are indicator rows


def test_mixup_and_cutmix_mix_indicator_targets_linearly(data):
    X, Y = data
    targets = torch.as_tensor(Y[:8], dtype=torch.float32)
    images = torch.as_tensor(X[:8]).reshape(8, 1, 8, 8)
    from sklearn_imgcls._core.components import augmentation_chain

    for name in ("mixup", "cutmix"):
        _, mixed = augment_batch(augmentation_chain([name]), images, targets, torch.Generator().manual_seed(1), 3)
        assert mixed.shape == (8, 3) and ((mixed >= 0) & (mixed <= 1)).all()
        assert not torch.equal(mixed, targets)
    clf = small(augment=["mixup", "cutmix"]).fit(X, Y)
    assert clf.predict(X[:3]).shape == (3, 3)


def test_test_time_views_average_the_sigmoids(fitted, data):
    X, _ = data
    plain = fitted.predict_proba(X[:20])
    flipped = fitted.predict_proba(X[:20].reshape(20, 8, 8)[:, :, ::-1].reshape(20, 64))
    try:
        fitted.set_params(tta=["flip_h"])
        np.testing.assert_allclose(fitted.predict_proba(X[:20]), (plain + flipped) / 2, atol=1e-6)
    finally:
        fitted.set_params(tta=None)


def test_transfer_classifier_fits_multilabel_targets(data):
    X, Y = data
    clf = TransferClassifier("simple_cnn", weights=None, freeze="none", max_epochs=1, fine_tune_epochs=0,
                             batch_size=20, random_state=0).fit(X[:40], label_lists(Y[:40]))
    assert clf.multilabel_ and clf.classes_.tolist() == ["even", "high", "round"]
    assert clf.predict_proba(X[:4]).shape == (4, 3) and clf.predict(X[:4]).shape == (4, 3)


def test_multiclass_fits_keep_their_behaviour(digits_small):
    X, y = digits_small
    clf = small().fit(X[:200], y[:200])
    assert clf.multilabel_ is False and clf.predict(X[:5]).shape == (5,)
    np.testing.assert_allclose(clf.predict_proba(X[:5]).sum(axis=1), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the threshold of a multi-class model is ignored, not checked
        clf.set_params(threshold=7).predict(X[:2])


def test_image_files_with_label_collections(data, tmp_path):
    from PIL import Image

    X, Y = data
    paths = []
    for i, image in enumerate((X[:40].reshape(40, 8, 8) * 255).astype(np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    clf = small(batch_size=16, validation_fraction=0.25).fit(paths, label_lists(Y[:40]))
    assert clf.classes_.tolist() == ["even", "high", "round"]
    proba = clf.predict_proba(paths[:5])
    assert proba.shape == (5, 3) and clf.predict(paths[:5]).shape == (5, 3)


class _PriorAdjustedBCE(torch.nn.Module):
    """A third party's multi-label loss: BCE on logits shifted by each label's log-odds prior."""

    def __init__(self, class_priors: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("shift", torch.logit(class_priors.clamp(1e-3, 1 - 1e-3)))
        self.reduction = "mean"

    def forward(self, logits, targets):
        return torch.nn.functional.binary_cross_entropy_with_logits(logits + self.shift, targets.float())


class _MultiLabelPlugin:
    built_with: list = []

    @hookimpl
    def sklearn_imgcls_register_losses(self):
        def build(class_weight=None, class_priors=None):
            _MultiLabelPlugin.built_with.append(class_priors)
            return _PriorAdjustedBCE(class_priors)

        return [LossSpec("prior_bce", build, "BCE with label priors", multilabel=True, needs_class_priors=True)]


def test_a_plugin_declares_a_multilabel_loss_and_gets_each_labels_share_of_positives(data, fresh_registry):
    X, Y = data
    get_registry().register_plugin(_MultiLabelPlugin(), name="multilabel_plugin")
    clf = small(loss="prior_bce").fit(X, Y)
    np.testing.assert_allclose(_MultiLabelPlugin.built_with[-1].numpy(), Y.mean(axis=0), rtol=1e-6)
    assert clf.multilabel_ and clf.predict(X[:2]).shape == (2, 3)
    with pytest.raises(ValueError, match="sample_weight needs a loss that can weight samples.*binary_cross_entropy"):
        small(loss="prior_bce").fit(X, Y, sample_weight=np.ones(len(X)))


def test_single_label_measures_refuse_a_multilabel_model_by_name():
    """Corruption accuracy, shift curves, attacks and label-issue search say why they refuse, and what to use."""
    from sklearn.datasets import load_digits

    from sklearn_imgcls.corruption import corruption_report, shift_curve
    from sklearn_imgcls.quality import find_label_issues
    from sklearn_imgcls.robustness import fgsm

    X, y = load_digits(return_X_y=True)
    X, y = X[:120] / 16, y[:120]
    Y = np.stack([y % 2 == 0, y >= 5], axis=1).astype(int)
    clf = CNNClassifier("simple_cnn", image_shape=(1, 8, 8), max_epochs=1, random_state=0).fit(X, Y)
    for call, what in ((lambda: corruption_report(clf, X, Y, "gaussian_noise", (1,)), "under corruptions"),
                       (lambda: shift_curve(clf, X, Y), "under corruptions, shifts"),
                       (lambda: fgsm(clf, X, Y, 0.1), "adversarial attacks"),
                       (lambda: find_label_issues(CNNClassifier(), X, Y), "multilabel_classification")):
        with pytest.raises(ValueError, match=what) as info:
            call()
        assert "several labels per image" in str(info.value)


@pytest.mark.parametrize("values", [(-1, 1), (0, 5)])
def test_a_two_valued_matrix_other_than_zero_one_is_refused(values):
    """scikit-learn calls any two-valued 2-D target an indicator; fit trained on -1/1 as if it were 0/1."""
    X = np.random.default_rng(0).random((12, 8, 8)).astype(np.float32)
    Y = np.where(np.arange(24).reshape(12, 2) % 3 == 0, values[1], values[0])
    with pytest.raises(ValueError, match=r"holds only 0 and 1.*\(Y > 0\)"):
        CNNClassifier("simple_cnn", max_epochs=1).fit(X, Y)


def test_plot_cam_with_labels_in_the_maps_position_says_to_pass_y_by_name():
    from sklearn_imgcls.plot import plot_cam

    X = np.random.default_rng(0).random((12, 8, 8)).astype(np.float32)
    y = np.arange(12) % 2
    clf = CNNClassifier("simple_cnn", max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match=r"third argument is maps.*y=labels"):
        plot_cam(clf, X, y)
