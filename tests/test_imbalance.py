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
    import imblearn  # noqa: F401 - in the test extra: a missing one fails here, never skips
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
    import imblearn  # noqa: F401 - in the test extra: a missing one fails here, never skips
    X, y = digits_small
    keep = (y != 3) | (np.cumsum(y == 3) <= 3)  # three images of class 3
    with pytest.raises(ValueError, match="only .* image\\(s\\) of class 3.*sampler='oversample'"):
        CNNClassifier(image_shape=(1, 8, 8), sampler="smote", max_epochs=1).fit(X[keep], y[keep])


def test_smote_needs_images_in_memory(tmp_path, digits_small):
    import imblearn  # noqa: F401 - in the test extra: a missing one fails here, never skips
    from PIL import Image

    X, y = digits_small
    paths = []
    for i in range(20):
        path = tmp_path / f"{i}.png"
        Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    with pytest.raises(ValueError, match="resamples the training split.s images in memory"):
        CNNClassifier(sampler="smote", max_epochs=1).fit(paths, y[:20])


def test_sample_weight_of_ones_changes_nothing_and_zero_weight_silences_a_class(digits_small):
    X, y = digits_small
    params = dict(image_shape=(1, 8, 8), max_epochs=6, lr=5e-3, random_state=0)
    plain = CNNClassifier(**params).fit(X, y)
    ones = CNNClassifier(**params).fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-4)
    weights = np.where(y == 0, 0.0, 1.0)
    silenced = CNNClassifier(**params).fit(X, y, sample_weight=weights)
    recall_plain = (plain.predict(X[y == 0]) == 0).mean()
    recall_silenced = (silenced.predict(X[y == 0]) == 0).mean()
    assert recall_plain > 0.8 and recall_silenced < 0.1


def test_sample_weight_works_with_focal_loss_validation_and_files(digits_small, tmp_path):
    from PIL import Image

    X, y = digits_small
    weights = np.linspace(0.5, 2.0, len(y))
    clf = CNNClassifier(image_shape=(1, 8, 8), max_epochs=2, loss="focal", validation_fraction=0.2, random_state=0)
    clf.fit(X, y, sample_weight=weights)
    assert np.isfinite(clf.history_[-1, "valid_loss"])
    paths = []
    for i in range(40):
        path = tmp_path / f"{i}.png"
        Image.fromarray((X[i].reshape(8, 8) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    CNNClassifier(max_epochs=1, random_state=0).fit(paths, y[:40], sample_weight=weights[:40])


@pytest.mark.parametrize(
    "weights, pattern",
    [(np.ones(3), "1-D array of 400 weights"), (-np.ones(400), "non-negative"), (np.zeros(400), "sums to zero")],
)
def test_bad_sample_weight_is_explained(digits_small, weights, pattern):
    X, y = digits_small
    with pytest.raises(ValueError, match=pattern):
        CNNClassifier(image_shape=(1, 8, 8), max_epochs=1).fit(X, y, sample_weight=weights)


def test_sample_weight_needs_a_loss_with_reduction():
    from sklearn_imgcls._core.net import per_sample_criterion

    class Opaque(torch.nn.Module):
        def forward(self, logits, targets):
            return logits.sum()

    with pytest.raises(ValueError, match="cannot weight samples"):
        per_sample_criterion(Opaque(), "opaque")
    with pytest.raises(TypeError, match="'opaque' declares sample_weights=True but its module Opaque has no 'reduction'"):
        per_sample_criterion(Opaque(), "opaque", declared=True)


def test_sampler_parameters_and_smote_inside_cross_validation(digits_small):
    import imblearn  # noqa: F401 - in the test extra: a missing one fails here, never skips
    from sklearn.model_selection import StratifiedKFold, cross_validate

    X, y = digits_small
    keep = (y < 5) | (np.arange(len(y)) % 4 == 0)
    seen = []
    clf = CNNClassifier(image_shape=(1, 8, 8), max_epochs=1, random_state=0, sampler=("smote", {"k_neighbors": 2}),
                        validation_fraction=None, callbacks=[_SplitSizes(seen)])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    # every fold trains (none fails silently); each clone records into its own copy of the callback
    fitted = cross_validate(clf, X[keep], y[keep], cv=cv, error_score="raise", return_estimator=True)["estimator"]
    for estimator, (train, _) in zip(fitted, cv.split(X[keep], y[keep]), strict=True):
        (counts, _), = estimator.callbacks[0].seen
        assert counts.min() == counts.max() == np.bincount(y[keep][train]).max()


def test_works_inside_an_imblearn_pipeline_after_a_sampler(digits_small):
    import imblearn  # noqa: F401 - in the test extra: a missing one fails here, never skips
    from imblearn.pipeline import make_pipeline
    from imblearn.under_sampling import RandomUnderSampler

    X, y = digits_small
    keep = (y < 5) | (np.arange(len(y)) % 4 == 0)
    seen = []
    clf = CNNClassifier(image_shape=(1, 8, 8), max_epochs=1, random_state=0, callbacks=[_SplitSizes(seen)])
    pipe = make_pipeline(RandomUnderSampler(random_state=0), clf)
    pipe.fit(X[keep], y[keep])
    counts, _ = seen[0]
    assert counts.min() == counts.max() == np.bincount(y[keep]).min()
    assert pipe.predict(X).shape == y.shape  # no resampling at predict time


def test_smote_in_embedding_space_through_backbone_features(digits_small):
    import imblearn  # noqa: F401 - in the test extra: a missing one fails here, never skips
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression

    from sklearn_imgcls import BackboneFeatures

    X, y = digits_small
    keep = (y < 5) | (np.arange(len(y)) % 4 == 0)
    pipe = make_pipeline(
        BackboneFeatures("simple_cnn", weights=None, image_shape=(1, 8, 8)),
        SMOTE(k_neighbors=3, random_state=0),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(X[keep], y[keep])
    assert pipe.score(X, y) > 0.3


@pytest.mark.parametrize("sampler", [["oversample"], ("smote", 3), 5])
def test_sampler_must_be_a_name_or_one_pair(digits_small, sampler):
    X, y = digits_small
    with pytest.raises(TypeError, match="sampler must be None, a sampler name or one"):
        CNNClassifier(image_shape=(1, 8, 8), max_epochs=1, sampler=sampler).fit(X, y)
