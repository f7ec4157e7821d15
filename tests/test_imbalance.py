"""Imbalance tools: focal and logit-adjusted losses, SMOTE through imbalanced-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skorch.callbacks import Callback

from sklearn_imgcls import CNNClassifier, build_loss

logits_strategy = st.integers(2, 5).flatmap(
    lambda c: st.tuples(
        st.lists(st.lists(st.floats(-5, 5), min_size=c, max_size=c), min_size=1, max_size=6),
        st.lists(st.integers(0, c - 1), min_size=6, max_size=6),
    )
)


@settings(max_examples=40, deadline=None)
@given(data=logits_strategy, gamma=st.sampled_from([0.0, 1.0, 2.0]))
def test_focal_equals_the_textbook_formula(data, gamma):
    rows, labels = data
    logits = torch.tensor(rows)
    targets = torch.tensor(labels[: len(rows)])
    p_t = torch.softmax(logits, 1)[torch.arange(len(rows)), targets]
    expected = (-((1 - p_t) ** gamma) * torch.log(p_t)).mean()
    assert torch.isclose(build_loss("focal", gamma=gamma)(logits, targets), expected, atol=1e-5)
    if gamma == 0.0:
        assert torch.isclose(build_loss("focal", gamma=0.0)(logits, targets), torch.nn.functional.cross_entropy(logits, targets), atol=1e-5)


def test_focal_class_weight_is_alpha_with_weighted_mean():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([0, 1, 1])
    weight = torch.tensor([0.25, 0.75])
    p_t = torch.softmax(logits, 1)[torch.arange(3), targets]
    w = weight[targets]
    expected = (w * -(1 - p_t) ** 2 * torch.log(p_t)).sum() / w.sum()
    assert torch.isclose(build_loss("focal", class_weight=weight)(logits, targets), expected)
    soft = torch.nn.functional.one_hot(targets, 2).float()
    assert torch.isclose(build_loss("focal", class_weight=weight)(logits, soft), expected)


def test_logit_adjustment_adds_tau_log_priors():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    targets = torch.tensor([2, 0])
    priors = torch.tensor([0.7, 0.2, 0.1])
    loss = build_loss("logit_adjustment", class_priors=priors, tau=2.0)
    expected = torch.nn.functional.cross_entropy(logits + 2.0 * torch.log(priors), targets)
    assert torch.isclose(loss(logits, targets), expected)
    with pytest.raises(ValueError, match="class_priors"):
        build_loss("logit_adjustment")


def test_estimator_passes_training_priors_to_the_loss(digits_small):
    X, y = digits_small
    keep = (y < 3) & ((y != 2) | (np.arange(len(y)) % 4 == 0))
    clf = CNNClassifier(image_shape=(1, 8, 8), loss="logit_adjustment", max_epochs=1, random_state=0).fit(X[keep], y[keep])
    counts = np.bincount(y[keep])
    np.testing.assert_allclose(clf.net_.criterion_.adjustment.numpy(), np.log(counts / counts.sum()), rtol=1e-5)


class _SplitSizes(Callback):
    """Record the class counts of the training and validation splits skorch trains on."""

    def __init__(self, seen):
        self.seen = seen

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        valid = None if dataset_valid is None else len(dataset_valid)
        self.seen.append((np.bincount(np.asarray(dataset_train.y)), valid))


def test_smote_balances_only_the_training_split(digits_small):
    pytest.importorskip("imblearn")
    X, y = digits_small
    keep = (y < 2) | (np.arange(len(y)) % 2 == 0)
    seen = []
    X_uint8 = (X[keep] * 255).astype(np.uint8)
    clf = CNNClassifier(
        image_shape=(1, 8, 8), sampler="smote", max_epochs=1, validation_fraction=0.2,
        random_state=0, callbacks=[_SplitSizes(seen)],
    )
    clf.fit(X_uint8, y[keep])
    counts, n_valid = seen[0]
    n_train_real = keep.sum() - n_valid
    assert len(set(counts.tolist())) == 1, counts
    assert counts.sum() > n_train_real  # synthetic images were added to training
    assert n_valid == int(np.ceil(0.2 * keep.sum())) or n_valid == int(0.2 * keep.sum())
    assert clf.predict(X_uint8).shape == (keep.sum(),)


def test_smote_with_too_few_images_of_a_class_says_so(digits_small):
    pytest.importorskip("imblearn")
    X, y = digits_small
    keep = (y != 3) | (np.cumsum(y == 3) <= 3)  # three images of class 3
    with pytest.raises(ValueError, match="only .* image\\(s\\) of class 3.*sampler='oversample'"):
        CNNClassifier(image_shape=(1, 8, 8), sampler="smote", max_epochs=1).fit(X[keep], y[keep])


def test_smote_needs_images_in_memory(tmp_path, digits_small):
    pytest.importorskip("imblearn")
    from PIL import Image

    X, y = digits_small
    paths = []
    for i in range(20):
        path = tmp_path / f"{i}.png"
        Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    with pytest.raises(ValueError, match="resamples images in memory"):
        CNNClassifier(sampler="smote", max_epochs=1).fit(paths, y[:20])
