"""Augmentations, presets, label mixing, test-time augmentation and their place in fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skorch.dataset import Dataset
from sklearn.model_selection import KFold, cross_val_score

from sklearn_imgcls.plugin.hookspecs import PluginDeprecationWarning
from sklearn_imgcls import CNNClassifier, build_augmentation, list_augmentations
from sklearn_imgcls.presets import AUGMENT_PRESETS as PRESETS
from sklearn_imgcls._core.iterators import BatchIterator, augment_batch
from sklearn_imgcls.plugin.registry import ComponentChain, UnknownComponentError, get_registry
from tests.plugins import tiny_linear

FAST = dict(image_shape=(1, 8, 8), preset="fast", lr_schedule="constant", max_epochs=3, lr=5e-3, random_state=0)
MIXERS = ["mixup", "cutmix"]
POLICIES = ["randaugment", "trivialaugment"]


def per_image_augmentations():
    return [name for name in list_augmentations() if name not in MIXERS and name not in ("counting", "legacy_swap")]


def test_the_promised_augmentations_are_registered():
    promised = {"flip_h", "flip_v", "rotate", "random_crop", "random_resized_crop", "translate", "color_jitter",
                "gaussian_noise", "random_erasing", "mixup", "cutmix", "randaugment", "trivialaugment"}
    assert promised <= set(list_augmentations())
    assert set(list_augmentations(tag="mixes_labels")) == set(MIXERS)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 5), channels=st.sampled_from([1, 3]), h=st.integers(2, 12), w=st.integers(2, 12),
    seed=st.integers(0, 2**16), data=st.data(),
)
def test_per_image_augmentations_keep_shape_dtype_range_and_are_seeded(n, channels, h, w, seed, data):
    name = data.draw(st.sampled_from(per_image_augmentations()))
    images = torch.rand((n, channels, h, w), generator=torch.Generator().manual_seed(seed))
    augment = build_augmentation(name)
    out = augment(images, torch.Generator().manual_seed(seed))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0, name
    assert torch.equal(out, augment(images, torch.Generator().manual_seed(seed))), name


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), classes=st.integers(2, 5), seed=st.integers(0, 2**16), name=st.sampled_from(MIXERS))
def test_mixup_and_cutmix_give_valid_soft_targets(n, classes, seed, name):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand((n, 1, 6, 6), generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    chain = ComponentChain("augmentation", [(name, {})])
    out, soft = augment_batch(chain, images, labels, torch.Generator().manual_seed(seed), classes)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert soft.shape == (n, classes) and torch.all(soft >= 0)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(n))
    assert int((soft > 0).sum(dim=1).max()) <= 2
    assert set(torch.nonzero(soft)[:, 1].tolist()) <= set(labels.tolist())  # mass only on labels in the batch
    if n == 1:  # nothing to mix with: unchanged one-hot
        assert torch.equal(soft, torch.nn.functional.one_hot(labels, classes).float())


def test_cutmix_targets_match_the_pasted_area():
    images = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    labels = torch.tensor([0, 1])
    for seed in range(10):
        out, soft = augment_batch(ComponentChain("augmentation", [("cutmix", {})]), images, labels,
                                  torch.Generator().manual_seed(seed), 2)
        # image 0 is all zeros, so its ones are pasted from image 1 (or itself when paired with itself)
        share_from_one = float(out[0].mean())
        if soft[0, 1] > 0:
            assert soft[0, 1] == pytest.approx(share_from_one)


def test_mixup_then_cutmix_chain_keeps_soft_targets_valid():
    chain = ComponentChain("augmentation", [("mixup", {}), ("cutmix", {})])
    images, labels = torch.rand(8, 1, 6, 6), torch.arange(8) % 4
    _, soft = augment_batch(chain, images, labels, torch.Generator().manual_seed(0), 4)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(8))


def test_neutral_parameters_leave_images_unchanged():
    images = torch.rand(4, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    g = torch.Generator
    for name, params in [("rotate", {"degrees": 0}), ("translate", {"fraction": 0}),
                         ("random_resized_crop", {"scale": (1, 1), "ratio": (1, 1)}),
                         ("color_jitter", {"brightness": 0, "contrast": 0}), ("gaussian_noise", {"std": 0}),
                         ("random_erasing", {"p": 0})]:
        out = build_augmentation(name, **params)(images, g().manual_seed(1))
        torch.testing.assert_close(out, images, atol=1e-5, rtol=0, msg=name)


def test_rotation_keeps_a_centred_disc_and_moves_an_off_centre_dot():
    rows, cols = torch.meshgrid(torch.arange(15.0), torch.arange(15.0), indexing="ij")
    disc = (((rows - 7) ** 2 + (cols - 7) ** 2) <= 16).float().expand(20, 1, 15, 15)
    out = build_augmentation("rotate", degrees=180)(disc, torch.Generator().manual_seed(0))
    assert float((out - disc).abs().mean()) < 0.25 * float(disc.mean())  # only the rim is resampled
    mass = out.sum(dim=(1, 2, 3))
    centre_row = (out[:, 0] * rows).sum(dim=(1, 2)) / mass
    centre_col = (out[:, 0] * cols).sum(dim=(1, 2)) / mass
    assert torch.allclose(centre_row, torch.full((20,), 7.0), atol=0.2)
    assert torch.allclose(centre_col, torch.full((20,), 7.0), atol=0.2)
    dot = torch.zeros(20, 1, 15, 15)
    dot[:, 0, 2, 7] = 1.0
    moved = build_augmentation("rotate", degrees=180)(dot, torch.Generator().manual_seed(0))
    assert (moved.flatten(1).argmax(dim=1) != 2 * 15 + 7).sum() >= 15


def test_random_erasing_blanks_one_rectangle_of_the_promised_size():
    images = torch.ones(50, 1, 20, 20)
    out = build_augmentation("random_erasing", p=1.0, scale=(0.05, 0.2))(images, torch.Generator().manual_seed(0))
    erased = (out == 0).float().mean(dim=(1, 2, 3))
    assert torch.all(erased >= 0.04) and torch.all(erased <= 0.23)


def test_policies_explain_unsupported_inputs():
    with pytest.raises(ValueError, match="1- or 3-channel"):
        build_augmentation("randaugment")(torch.rand(2, 2, 8, 8), torch.Generator())
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]"):
        build_augmentation("trivialaugment")(torch.rand(2, 1, 8, 8) * 4, torch.Generator())


def test_per_image_augmentations_never_change_the_labels():
    X, y = torch.rand(30, 1, 6, 6), torch.arange(30) % 3
    chain = ComponentChain("augmentation", [(name, {}) for name in per_image_augmentations()])

    def labels(augment):
        it = BatchIterator(Dataset(X, y), batch_size=7, shuffle=True, generator=torch.Generator().manual_seed(3),
                           augment=augment, num_classes=3)
        return [yb for _, yb in it]

    assert all(torch.equal(a, b) for a, b in zip(labels(None), labels(chain)))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_resolve_to_registered_augmentations_and_train(preset, digits_small):
    X, y = digits_small
    assert {name for name, _ in PRESETS[preset]} <= set(list_augmentations())
    clf = CNNClassifier(**{**FAST, "max_epochs": 2}, augment=preset).fit(X, y)
    assert clf.predict(X).shape == y.shape


def test_unknown_augmentation_names_suggest_close_matches(digits_small):
    X, y = digits_small
    with pytest.raises(UnknownComponentError, match="rotate"):
        CNNClassifier(**FAST, augment="rotat").fit(X, y)


def test_mixup_trains_with_every_builtin_loss(digits_small):
    X, y = digits_small
    for loss in ("cross_entropy", "focal", "label_smoothing", "logit_adjustment"):
        clf = CNNClassifier(**{**FAST, "max_epochs": 4}, loss=loss, augment=["mixup", "cutmix"], class_weight="balanced")
        assert clf.fit(X, y).score(X, y) > 0.3, loss


@pytest.fixture
def counting_plugin():
    registry = get_registry()
    with pytest.warns(PluginDeprecationWarning):  # tiny_linear is written against the deprecated 0.1 hooks
        name = registry.register_plugin(tiny_linear, name="tiny_linear_augment_test")
    tiny_linear.CALLS.update(augment=0, images=0)
    yield
    registry.unregister_plugin(name)


def test_under_cross_validation_augmentation_touches_only_training_folds(digits_small, counting_plugin):
    X, y = digits_small
    clf = CNNClassifier("tiny_linear", **FAST, augment=["counting"])
    cv = KFold(4, shuffle=True, random_state=0)
    cross_val_score(clf, X, y, cv=cv)
    train_sizes = [len(train) for train, _ in cv.split(X)]
    assert tiny_linear.CALLS["images"] == FAST["max_epochs"] * sum(train_sizes)


def test_preview_grid_shows_each_image_with_its_views(digits_small):
    import matplotlib  # noqa: F401 - in the test extra: a missing one fails here, never skips
    from sklearn_imgcls.plot import plot_augmentations

    X, _ = digits_small
    fig = plot_augmentations(X, "strong", image_shape=(1, 8, 8), n_images=3, n_views=4)
    assert len(fig.axes) == 3 * 5 and "strong" in fig._suptitle.get_text()
    assert not np.array_equal(fig.axes[0].images[0].get_array(), fig.axes[1].images[0].get_array())


def test_tta_averages_the_probabilities_of_the_views(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**FAST).fit(X, y)
    images = X.reshape(-1, 1, 8, 8)
    plain = clf.predict_proba(X)
    flipped = clf.predict_proba(images[..., ::-1].reshape(len(X), -1))
    clf.set_params(tta="flip_h")
    np.testing.assert_allclose(clf.predict_proba(X), (plain + flipped) / 2, atol=1e-6)
    clf.set_params(tta=["flip_h", "shift"])
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert not np.allclose(proba, plain)


def test_tta_rejects_unknown_views(digits_small):
    X, y = digits_small
    clf = CNNClassifier(**FAST, tta="rotate")
    with pytest.raises(ValueError, match="tta must be"):
        clf.fit(X, y)
