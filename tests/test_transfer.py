"""TransferClassifier, BackboneFeatures and the weights sources, with checkpoints made here."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from torchvision.models import get_model, get_model_weights

import sklearn_imgcls
from sklearn_imgcls import BackboneFeatures, CNNClassifier, TransferClassifier, describe_backbones, list_backbones
from sklearn_imgcls._core.weights import WeightsError, hub_checkpoint_path

ARCH = "mobilenet_v3_small"  # the smallest torchvision network with BatchNorm


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A TORCH_HOME holding torchvision's DEFAULT mobilenet_v3_small file (random weights, seed 0)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = get_model_weights(ARCH).DEFAULT
    path = hub_checkpoint_path(weights.url)
    assert path.startswith(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    torch.manual_seed(0)
    reference = get_model(ARCH)
    torch.save(reference.state_dict(), path)
    return reference


@pytest.fixture(scope="module")
def rgb_blobs():
    """60 RGB 12x12 images whose class is the brightest colour channel."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    images = rng.uniform(0, 0.5, (60, 3, 12, 12)).astype(np.float32)
    images[np.arange(60), y] += 0.5
    return images, y


SMALL = dict(input_size=(32, 32), batch_size=20, random_state=0)


def test_weights_name_loads_the_cached_torchvision_file(torch_home, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier(ARCH, weights="DEFAULT", freeze="backbone", max_epochs=1, fine_tune_epochs=0, **SMALL)
    clf.fit(X, y)
    backbone = clf.net_.module_.backbone
    loaded, reference = backbone.state_dict(), torch_home.state_dict()
    for name in ("features.0.0.weight", "features.3.block.0.0.weight"):
        assert torch.equal(loaded[name], reference[name]), name
    assert backbone.classifier[-1].out_features == 3
    np.testing.assert_allclose(clf.net_.module_.mean.flatten().numpy(), [0.485, 0.456, 0.406])
    assert clf.net_.module_.input_size == (32, 32)


def test_torchvision_input_size_defaults_to_the_weights_crop(torch_home, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier(ARCH, max_epochs=1, fine_tune_epochs=0, batch_size=30, random_state=0).fit(X[::10], y[::10])
    assert clf.net_.module_.input_size == (224, 224)


def test_unknown_and_uncached_weights_fail_fast_naming_the_file(tmp_path, monkeypatch, rgb_blobs):
    X, y = rgb_blobs
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="Unknown weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        TransferClassifier(ARCH, weights="IMAGENET9K", **SMALL).fit(X, y)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    # an OSError (the file is missing) that is also a WeightsError (a ValueError), as before contract v2
    with pytest.raises(OSError, match=f"{ARCH}/IMAGENET1K_V1: .*not cached.*put it at {tmp_path}.*checkpoints.*or pass "
                                      f"the file's path") as caught:
        TransferClassifier(ARCH, weights="DEFAULT", **SMALL).fit(X, y)
    assert isinstance(caught.value, WeightsError)
    with pytest.raises(WeightsError, match="no pretrained weights to name"):
        TransferClassifier("simple_cnn", weights="DEFAULT", **SMALL).fit(X, y)


def _no_network(*args, **kwargs):
    raise OSError("network unreachable")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_checkpoint_from_a_fitted_estimator_round_trips(tmp_path, rgb_blobs, suffix):
    X, y = rgb_blobs
    source = CNNClassifier("bn_cnn", max_epochs=2, random_state=0).fit(X, y)
    path = str(tmp_path / f"source{suffix}")
    source.save_weights(path)
    target = TransferClassifier("bn_cnn", weights=path, freeze="backbone", max_epochs=1, fine_tune_epochs=0, random_state=0)
    target.fit(X[y < 2], y[y < 2])
    src, dst = source.net_.module_.state_dict(), target.net_.module_.state_dict()
    for name in ("backbone.features.0.weight", "backbone.features.1.running_mean", "mean", "std"):
        assert torch.equal(src[name], dst[name]), name
    assert target.net_.module_.backbone.classifier[-1].out_features == 2


def test_pickle_bearing_checkpoint_is_refused(tmp_path, rgb_blobs):
    X, y = rgb_blobs
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": _Payload()}, path)
    with pytest.raises(WeightsError, match="Cannot load checkpoint.*safely.*weights_only"):
        TransferClassifier("bn_cnn", weights=str(path), **SMALL).fit(X, y)
    with pytest.raises(WeightsError, match="Checkpoint file not found"):
        TransferClassifier("bn_cnn", weights=str(tmp_path / "missing.pth"), **SMALL).fit(X, y)


class _Payload:
    """An arbitrary object: loading it would need unpickling code."""


def test_checkpoint_of_another_architecture_is_explained(tmp_path, rgb_blobs):
    X, y = rgb_blobs
    source = CNNClassifier("simple_cnn", max_epochs=1, random_state=0).fit(X, y)
    source.save_weights(str(tmp_path / "simple.pth"))
    with pytest.raises(WeightsError, match="not a bn_cnn checkpoint"):
        TransferClassifier("bn_cnn", weights=str(tmp_path / "simple.pth"), **SMALL).fit(X, y)


def _bn_snapshot(module):
    return {n: b.clone() for n, b in module.named_buffers() if "running" in n}


def test_freeze_backbone_trains_only_the_head_and_keeps_batchnorm_statistics(torch_home, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier(ARCH, freeze="backbone", max_epochs=2, fine_tune_epochs=0, **SMALL).fit(X, y)
    backbone = clf.net_.module_.backbone
    reference = torch_home.state_dict()
    trained = backbone.state_dict()
    head = {"classifier.3.weight", "classifier.3.bias"}
    assert set(clf.frozen_parameters_) == {n for n, _ in backbone.named_parameters()} - head
    for name, value in reference.items():
        if name in trained and not name.startswith("classifier.3"):
            assert torch.equal(trained[name], value), f"{name} changed while frozen"
    assert all(not p.requires_grad for n, p in backbone.named_parameters() if n not in head)


def test_fine_tune_epochs_unfreeze_at_a_lower_rate(torch_home, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier(
        ARCH, freeze="backbone", max_epochs=3, fine_tune_epochs=1, lr=1e-2, backbone_lr_ratio=0.05, **SMALL
    ).fit(X, y)
    backbone = clf.net_.module_.backbone
    assert all(p.requires_grad for p in backbone.parameters())
    assert not torch.equal(backbone.state_dict()["features.0.0.weight"], torch_home.state_dict()["features.0.0.weight"])
    assert not torch.equal(
        backbone.state_dict()["features.0.1.running_mean"], torch_home.state_dict()["features.0.1.running_mean"]
    )
    rates = sorted(group["lr"] for group in clf.net_.optimizer_.param_groups)
    assert rates == pytest.approx([1e-2 * 0.05, 1e-2])


def test_freeze_int_keeps_leading_blocks_frozen_and_none_trains_all(torch_home, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier(ARCH, freeze=2, max_epochs=1, fine_tune_epochs=0, **SMALL).fit(X, y)
    frozen = set(clf.frozen_parameters_)
    assert frozen and all(n.startswith(("features.0.", "features.1.")) for n in frozen)
    stats = _bn_snapshot(clf.net_.module_.backbone)
    assert torch.equal(stats["features.0.1.running_mean"], torch_home.state_dict()["features.0.1.running_mean"])
    assert not torch.equal(stats["features.2.block.0.1.running_mean"], torch_home.state_dict()["features.2.block.0.1.running_mean"])
    everything = TransferClassifier(ARCH, freeze="none", max_epochs=1, fine_tune_epochs=0, **SMALL).fit(X, y)
    assert everything.frozen_parameters_ == []


def test_grayscale_flat_rows_are_repeated_to_rgb(torch_home, digits_small):
    X, y = digits_small
    clf = TransferClassifier(ARCH, image_shape=(1, 8, 8), max_epochs=1, fine_tune_epochs=0, **SMALL).fit(X[:60], y[:60])
    assert clf.net_.module_.in_channels == 3 and clf.image_shape_ == (1, 8, 8)
    assert clf.predict_proba(X[:5]).shape == (5, len(np.unique(y[:60])))


def test_pickle_clone_and_grid_search_over_freeze_and_backbone(torch_home, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier(ARCH, max_epochs=1, fine_tune_epochs=0, **SMALL).fit(X, y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params() == clf.get_params()
    search = GridSearchCV(
        TransferClassifier(max_epochs=1, fine_tune_epochs=0, **SMALL),
        {"backbone": [ARCH], "freeze": ["backbone", "none"]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["freeze"] in {"backbone", "none"}


@pytest.mark.parametrize(
    "params, pattern",
    [
        (dict(freeze="all"), "freeze must be"),
        (dict(fine_tune_epochs=11), "fine_tune_epochs must be None or an integer from 0 to max_epochs=10"),
        (dict(backbone_lr_ratio=0), "backbone_lr_ratio must be a positive number"),
        (dict(input_size=(1, 32, 32)), r"input_size must be \(height, width\)"),
        (dict(weights=3), "weights must be None"),
    ],
)
def test_invalid_transfer_parameters(rgb_blobs, params, pattern):
    X, y = rgb_blobs
    with pytest.raises((ValueError, TypeError), match=pattern):
        TransferClassifier(ARCH, **params).fit(X, y)


def test_backbone_features_in_a_linear_probe(tmp_path, rgb_blobs):
    X, y = rgb_blobs
    source = CNNClassifier("bn_cnn", max_epochs=3, lr=1e-2, random_state=0).fit(X, y)
    source.save_weights(str(tmp_path / "bn.safetensors"))
    probe = make_pipeline(BackboneFeatures("bn_cnn", str(tmp_path / "bn.safetensors")), LogisticRegression(max_iter=1000))
    probe.fit(X, y)
    features = probe[0]
    assert features.n_features_out_ == 128  # bn_cnn's last block width
    embedded = features.transform(X)
    assert embedded.shape == (60, 128) and embedded.dtype == np.float32
    np.testing.assert_array_equal(embedded, features.transform(X))  # eval mode: deterministic
    assert probe.score(X, y) > 0.9
    assert list(features.get_feature_names_out()[:2]) == ["bn_cnn_0", "bn_cnn_1"]


def test_backbone_features_of_torchvision_weights(torch_home, rgb_blobs):
    X, _ = rgb_blobs
    features = BackboneFeatures(ARCH, input_size=(32, 32)).fit(X)
    assert features.transform(X[:4]).shape == (4, 1024)
    assert torch.equal(features.network_.backbone.state_dict()["features.0.0.weight"], torch_home.state_dict()["features.0.0.weight"])


def test_lr_find_returns_a_curve_and_leaves_the_estimator_unfitted(digits_small):
    X, y = digits_small
    clf = CNNClassifier(image_shape=(1, 8, 8), random_state=0)
    result = clf.lr_find(X, y, start_lr=1e-5, end_lr=10, num_steps=40)
    assert 2 <= len(result.lrs) <= 40 and len(result.lrs) == len(result.losses)
    assert np.all(np.diff(result.lrs) > 0)
    assert result.lrs[0] == pytest.approx(1e-5)
    assert 1e-5 <= result.suggested_lr <= 1.0
    assert not hasattr(clf, "net_") and not hasattr(clf, "classes_")

    import matplotlib

    matplotlib.use("Agg")
    from sklearn_imgcls.lr_finder import plot_lr_find

    fig = plot_lr_find(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate" and len(ax.lines) == 2


def test_pretrained_listing():
    pretrained = list_backbones(pretrained=True)
    assert {"resnet50", "vgg16", "mobilenet_v3_large", "convnext_tiny", "vit_b_16"} <= set(pretrained)
    assert "simple_cnn" in list_backbones(pretrained=False)
    table = describe_backbones(pretrained=True).set_index("name")
    assert "IMAGENET1K_V2" in table.loc["resnet50", "weights"]
    assert table.loc["vit_b_16", "input_size"] == (224, 224)


# -- issue #14: defaults never conflict; standard checkpoints keep their architecture ----------------


@pytest.mark.parametrize("freeze", ["none", "backbone", 1])
def test_defaults_never_conflict_with_a_small_max_epochs(freeze, rgb_blobs):
    X, y = rgb_blobs
    clf = TransferClassifier("simple_cnn", weights=None, freeze=freeze, max_epochs=1, batch_size=20, random_state=0)
    clf.fit(X, y)
    assert clf.fine_tune_epochs_ == 0
    assert len(clf.history_) == 1


def test_grid_over_freeze_with_small_max_epochs_fits_every_candidate(rgb_blobs):
    X, y = rgb_blobs
    search = GridSearchCV(
        TransferClassifier("simple_cnn", weights=None, max_epochs=2, batch_size=20, random_state=0),
        {"freeze": ["none", "backbone"]}, cv=2, error_score="raise",
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.fine_tune_epochs_ == (1 if search.best_params_["freeze"] == "backbone" else 0)


def test_default_fine_tuning_is_the_second_half_and_a_set_value_wins(rgb_blobs):
    X, y = rgb_blobs
    half = TransferClassifier("simple_cnn", weights=None, freeze="backbone", max_epochs=3, batch_size=20, random_state=0)
    assert half.fit(X, y).fine_tune_epochs_ == 1
    assert half.set_params(fine_tune_epochs=3).fit(X, y).fine_tune_epochs_ == 3
    with pytest.raises(ValueError, match="fine_tune_epochs must be None or an integer from 0 to max_epochs=3"):
        half.set_params(fine_tune_epochs=4).fit(X, y)


def test_a_standard_torchvision_checkpoint_path_keeps_its_architecture(tmp_path, monkeypatch, rgb_blobs):
    """The file torchvision writes, passed by path, works on 12x12 images exactly as through its weights name."""
    X, y = rgb_blobs
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    state = get_model("resnet18").state_dict()
    cached = hub_checkpoint_path(get_model_weights("resnet18").IMAGENET1K_V1.url)
    os.makedirs(os.path.dirname(cached))
    torch.save(state, cached)
    by_hand = str(tmp_path / "r18.pth")
    torch.save(state, by_hand)
    settings = dict(freeze="backbone", max_epochs=1, input_size=(64, 64), batch_size=30, random_state=0)
    from_path = TransferClassifier("resnet18", weights=by_hand, **settings).fit(X, y)
    from_name = TransferClassifier("resnet18", weights="IMAGENET1K_V1", **settings).fit(X, y)
    conv1 = from_path.net_.module_.backbone.conv1
    assert conv1.kernel_size == (7, 7) and torch.equal(conv1.weight, state["conv1.weight"])
    assert from_path.net_.module_.input_size == (64, 64)
    assert torch.allclose(from_path.net_.module_.mean.flatten(), from_name.net_.module_.mean.flatten())
    np.testing.assert_allclose(from_path.predict_proba(X), from_name.predict_proba(X), atol=1e-6)
    # model files of the first release record the native architecture as source "torchvision": still loaded
    assert from_name.net_.module_.recipe["source"] == "native"
    from_name.net_.module_.recipe["source"] = "torchvision"
    path = from_name.save(str(tmp_path / "old.safetensors"))
    os.remove(cached)  # loading needs no weights file
    loaded = sklearn_imgcls.load(path)
    assert loaded.net_.module_.backbone.conv1.kernel_size == (7, 7)  # the native stem, not the small-image one
    np.testing.assert_allclose(loaded.predict_proba(X), from_name.predict_proba(X), atol=1e-6)
    # its default input size is the pretrained one (224), as with the weights name
    from sklearn_imgcls._core.data import as_image_data
    from sklearn_imgcls._core.pretrained import build_pretrained_network

    built = build_pretrained_network("resnet18", by_hand, as_image_data(X), 3)
    assert built.network.input_size == (224, 224) and built.network.recipe["source"] == "native"


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_save_weights_records_the_variant_it_was_trained_as(tmp_path, rgb_blobs, suffix):
    """A ResNet trained from scratch on 12x12 images has the small-image stem; its file says so."""
    X, y = rgb_blobs
    source = CNNClassifier("resnet18", max_epochs=1, batch_size=30, random_state=0).fit(X, y)
    assert source.net_.module_.backbone.conv1.kernel_size == (3, 3)
    path = str(tmp_path / f"small_resnet{suffix}")
    source.save_weights(path)
    target = TransferClassifier("resnet18", weights=path, freeze="backbone", max_epochs=1, batch_size=30, random_state=0)
    target.fit(X[::2], y[::2])  # trains and predicts on the recorded 12x12 variant
    module = target.net_.module_
    assert module.backbone.conv1.kernel_size == (3, 3) and module.input_size == (12, 12)
    assert torch.equal(module.backbone.conv1.weight, source.net_.module_.backbone.conv1.weight)
    assert target.predict(X).shape == (60,)
    with pytest.raises(WeightsError, match="saved from backbone 'resnet18': not a resnet50 checkpoint"):
        TransferClassifier("resnet50", weights=path, max_epochs=1).fit(X, y)


def test_weights_files_without_a_recipe_still_load(tmp_path, rgb_blobs):
    """Files written by save_weights before it recorded the recipe: rebuilt for the images, as before."""
    X, y = rgb_blobs
    source = CNNClassifier("bn_cnn", max_epochs=1, random_state=0).fit(X, y)
    path = str(tmp_path / "old.pth")
    torch.save({k: v for k, v in source.net_.module_.state_dict().items()}, path)
    target = TransferClassifier("bn_cnn", weights=path, freeze="backbone", max_epochs=1, random_state=0).fit(X, y)
    assert torch.equal(target.net_.module_.backbone.features[0].weight, source.net_.module_.backbone.features[0].weight)


def test_save_weights_is_atomic_on_a_full_disk(tmp_path, monkeypatch, rgb_blobs):
    import errno

    X, y = rgb_blobs
    source = CNNClassifier("simple_cnn", max_epochs=1, random_state=0).fit(X, y)
    path = tmp_path / "w.pth"
    source.save_weights(str(path))
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"Cannot write .*w\.pth.*space"):
        source.save_weights(str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]

