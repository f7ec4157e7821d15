"""The timm plugin (plugins/sklearn-imgcls-timm): timm's model zoo as backbones, offline weights.

scripts/setup_env.sh installs the plugin; if it is missing, the import below
fails and so does every test here (nothing skips). The tests use timm's tiny
test architectures (``test_resnet``, ``test_vit``, ...; registered through
``SKLEARN_IMGCLS_TIMM_MODELS``) and weights files they write themselves.
"""

from __future__ import annotations

import json
import pickle
from importlib.metadata import entry_points

import numpy as np
import onnxruntime as ort
import pytest
import timm
import torch
from safetensors.torch import save_file
from sklearn.base import clone
from torch import nn

import sklearn_imgcls_timm
from sklearn_imgcls import BackboneFeatures, CNNClassifier, TransferClassifier, list_backbones, list_plugins, load
from sklearn_imgcls.cli.main import main
from sklearn_imgcls.explain import find_target_layer, grad_cam
from sklearn_imgcls.plugin import get_registry
from sklearn_imgcls.plugin.registry import reset_registry
from sklearn_imgcls.select import leaderboard
from sklearn_imgcls_timm.backbones import ResizeInput, timm_spec
from sklearn_imgcls_timm.weights import WEIGHTS_ENV, find_weights_file

TEST_MODELS = ("test_resnet", "test_efficientnet", "test_vit", "test_convnext")
TAG = "r160_in1k"  # timm's pretrained tag of its test architectures (160x160, 1000 classes)


@pytest.fixture(scope="module", autouse=True)
def timm_test_models():
    """Register timm's tiny test architectures through the plugin's environment variable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(sklearn_imgcls_timm.MODELS_ENV, ",".join(TEST_MODELS))
        reset_registry()
        yield
    reset_registry()


@pytest.fixture(scope="module")
def weights_folder(tmp_path_factory):
    """A folder holding ``test_resnet.r160_in1k.safetensors``: random weights (seed 0) of the native network."""
    folder = tmp_path_factory.mktemp("timm_weights")
    torch.manual_seed(0)
    state = timm.create_model("test_resnet", num_classes=1000).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / f"test_resnet.{TAG}.safetensors"))
    return folder


@pytest.fixture
def weights_env(weights_folder, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(weights_folder))
    return weights_folder


@pytest.fixture(scope="module")
def images():
    """40 RGB 16x16 images of two classes (class 1 is brighter), uint8."""
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    X = (rng.integers(0, 160, size=(40, 16, 16, 3)) + 90 * y[:, None, None, None]).astype(np.uint8)
    return X, y


@pytest.fixture(scope="module")
def fitted(images, weights_folder):
    """TransferClassifier("timm:test_resnet") fine-tuned from the local weights file, first block frozen."""
    X, y = images
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_ENV, str(weights_folder))
        clf = TransferClassifier("timm:test_resnet", weights=TAG, freeze=1, max_epochs=2, batch_size=16,
                                 input_size=(64, 64), precision="fp32", random_state=0)
        return clf.fit(X, y)


# -- the plugin is installed and listed ---------------------------------------------------------------

def test_the_timm_plugin_is_installed():
    """CI installs every plugins/*/ package (scripts/setup_env.sh); without it this fails, never skips."""
    assert any(ep.name == "timm" for ep in entry_points(group="sklearn_imgcls"))
    assert ("timm", "sklearn-imgcls-timm") in list_plugins()


def test_curated_and_environment_models_are_listed():
    names = list_backbones()
    for model in sklearn_imgcls_timm.CURATED:
        assert f"timm:{model}" in names
    for model in TEST_MODELS:
        assert f"timm:{model}" in names
    assert "timm:resnet18" in list_backbones(pretrained=True)
    assert "timm:convnext_atto" in list_backbones(tag="convnext")


def test_cli_plugins_shows_timm_backbones_with_their_plugin(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.strip().startswith("timm:resnet18 "))
    assert "timm from sklearn-imgcls-timm" in line and "ResNet-18" in line


@pytest.mark.parametrize("model", sorted(sklearn_imgcls_timm.CURATED))
def test_curated_specs_declare_what_timm_says(model):
    """classifier, first_conv, input size, mean/std from pretrained_cfg; target layer = last feature_info module."""
    spec = get_registry().get("backbone", f"timm:{model}")
    cfg = timm.models.get_pretrained_cfg(model)
    with torch.device("meta"):
        network = spec.build_native(10)
    assert (spec.classifier, spec.first_conv) == (cfg.classifier, cfg.first_conv)
    assert isinstance(network.get_submodule(spec.classifier), nn.Linear)
    assert network.get_submodule(spec.classifier).out_features == 10
    assert isinstance(network.get_submodule(spec.first_conv), nn.Conv2d)
    assert spec.target_layer == network.feature_info[-1]["module"]
    assert spec.input_size == tuple(cfg.input_size[1:])
    tags = {name.split(".", 1)[1] for name in timm.list_pretrained(f"{model}.*")}
    assert {w.name for w in spec.weights} <= tags and spec.weights
    default = spec.default_weights()
    assert default.name == cfg.tag and (default.mean, default.std) == (tuple(cfg.mean), tuple(cfg.std))


def test_environment_variable_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv(sklearn_imgcls_timm.MODELS_ENV, "resnet18,test_resnnet")
    with pytest.raises(ValueError, match=r"SKLEARN_IMGCLS_TIMM_MODELS names 'test_resnnet'.*'test_resnet'"):
        sklearn_imgcls_timm.extra_model_names()
    monkeypatch.setenv(sklearn_imgcls_timm.MODELS_ENV, "test_vit*")
    assert sklearn_imgcls_timm.extra_model_names() == timm.list_models("test_vit*")


def test_add_models_registers_more_in_this_process():
    try:
        assert sklearn_imgcls_timm.add_models("test_byobnet", "test_resnet") == ["timm:test_byobnet"]
        spec = get_registry().get("backbone", "timm:test_byobnet")
        assert spec.plugin.startswith("timm-extra") and spec.weights[0].name == TAG
        with pytest.raises(ValueError, match="timm has no model 'resnet_999'"):
            sklearn_imgcls_timm.add_models("resnet_999")
    finally:
        reset_registry()


# -- from scratch ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, channels, side", [
    ("test_resnet", 3, 16), ("test_efficientnet", 1, 32), ("test_vit", 1, 16), ("test_convnext", 3, 20),
])
def test_cnn_classifier_trains_timm_models_from_scratch(model, channels, side):
    rng = np.random.default_rng(0)
    X = rng.random((24, channels, side, side)).astype(np.float32)
    y = np.arange(24) % 3
    clf = CNNClassifier(f"timm:{model}", max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    network = clf.net_.module_.backbone
    assert type(network).__module__.startswith("timm.")
    assert network.get_submodule(get_registry().get("backbone", f"timm:{model}").first_conv).in_channels == channels


def test_backbone_params_reach_timm_and_unknown_ones_are_named():
    build = get_registry().get("backbone", "timm:test_resnet").build
    assert build(3, 2, (16, 16), drop_rate=0.25).drop_rate == 0.25
    with pytest.raises(TypeError, match=r"timm model 'test_resnet' does not take backbone_params \['dropout'\]"):
        build(3, 2, (16, 16), dropout=0.25)


def test_small_images_are_upsampled_to_the_smallest_size_the_model_takes():
    """ConvNeXt's stride-2 downsampling needs 32 pixels; ViT patches a multiple of 16; ResNet takes 16 as is."""
    build = get_registry().get("backbone", "timm:test_convnext").build
    hooks = list(build(1, 2, (20, 20))._forward_pre_hooks.values())
    assert [h.size for h in hooks if isinstance(h, ResizeInput)] == [(32, 32)]
    vit = get_registry().get("backbone", "timm:test_vit").build(3, 2, (20, 20))
    assert vit.patch_embed.img_size == (32, 32) and vit(torch.rand(2, 3, 20, 20)).shape == (2, 2)
    resnet = get_registry().get("backbone", "timm:test_resnet").build(3, 2, (16, 16))
    assert not resnet._forward_pre_hooks
    assert pickle.loads(pickle.dumps(build(3, 2, (8, 8))))(torch.rand(2, 3, 8, 8)).shape == (2, 2)


# -- pretrained weights, offline ---------------------------------------------------------------------

def test_weights_from_the_local_folder_reach_the_network(fitted, weights_folder):
    from safetensors.torch import load_file

    saved = load_file(str(weights_folder / f"test_resnet.{TAG}.safetensors"))
    backbone = fitted.net_.module_.backbone
    # conv1 is in the first block, frozen throughout (freeze=1): exactly the file's tensor
    torch.testing.assert_close(backbone.get_submodule("conv1.0").weight.detach().cpu(), saved["conv1.0.weight"])
    assert any(name.startswith("conv1.") for name in fitted.frozen_parameters_)
    assert backbone.fc.out_features == 2


def test_a_weights_file_path_works_too(images, weights_folder):
    X, y = images
    path = str(weights_folder / f"test_resnet.{TAG}.safetensors")
    clf = TransferClassifier("timm:test_resnet", weights=path, freeze="backbone", max_epochs=1, fine_tune_epochs=0,
                             input_size=(32, 32), precision="fp32", random_state=0).fit(X, y)
    from safetensors.torch import load_file

    torch.testing.assert_close(clf.net_.module_.backbone.layer4[0].conv1.weight.detach().cpu(),
                               load_file(path)["layer4.0.conv1.weight"])


def test_the_hugging_face_cache_is_read_offline(weights_folder, tmp_path, monkeypatch):
    """A file in the layout `hf download timm/test_resnet.r160_in1k` leaves is found without the network."""
    snapshot = tmp_path / "hub" / f"models--timm--test_resnet.{TAG}" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes((weights_folder / f"test_resnet.{TAG}.safetensors").read_bytes())
    (tmp_path / "hub" / f"models--timm--test_resnet.{TAG}" / "refs").mkdir()
    (tmp_path / "hub" / f"models--timm--test_resnet.{TAG}" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert find_weights_file("test_resnet", TAG) == str(snapshot / "model.safetensors")
    weights = get_registry().get("backbone", "timm:test_resnet").default_weights()
    assert weights.load.available()
    from safetensors.torch import load_file

    state = weights.load()
    torch.testing.assert_close(state["fc.weight"], load_file(str(snapshot / "model.safetensors"))["fc.weight"])
    assert state["fc.weight"].shape == (1000, 96)


def test_missing_weights_fail_fast_naming_the_file(tmp_path, monkeypatch, images):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no_hub"))
    weights = get_registry().get("backbone", "timm:test_efficientnet").default_weights()
    expected = str(tmp_path / "nowhere" / f"test_efficientnet.{TAG}.safetensors")
    assert not weights.load.available() and weights.load.path == expected
    with pytest.raises(OSError) as caught:
        weights.load()
    message = str(caught.value)
    assert expected in message and "timm/test_efficientnet.r160_in1k" in message and WEIGHTS_ENV in message
    X, y = images
    with pytest.raises((OSError, ValueError), match=f"test_efficientnet.{TAG}.safetensors"):
        TransferClassifier("timm:test_efficientnet", weights=TAG, max_epochs=1).fit(X, y)


def test_a_file_of_other_weights_is_refused_naming_it(tmp_path, monkeypatch):
    save_file({k: v.contiguous() for k, v in timm.create_model("test_vit").state_dict().items()},
              str(tmp_path / f"test_resnet.{TAG}.safetensors"))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=f"test_resnet.{TAG}.safetensors does not hold timm test_resnet"):
        get_registry().get("backbone", "timm:test_resnet").default_weights().load()


# -- everything else a backbone supports -------------------------------------------------------------

@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_fine_tuning_policies(images, weights_env, freeze):
    X, y = images
    clf = TransferClassifier("timm:test_resnet", weights="DEFAULT", freeze=freeze, max_epochs=2,
                             input_size=(32, 32), batch_size=20, random_state=0).fit(X, y)
    assert clf.fine_tune_epochs_ == (1 if freeze == "backbone" else 0)
    assert bool(clf.frozen_parameters_) == (freeze == "backbone")
    assert not any(name.startswith("fc.") for name in clf.frozen_parameters_)
    # discriminative learning rates: the backbone learns at lr * backbone_lr_ratio, the head at lr
    rates = sorted({group["lr"] for group in clf.net_.optimizer_.param_groups})
    assert rates == pytest.approx([clf.lr * clf.backbone_lr_ratio, clf.lr])


def test_grad_cam_uses_the_declared_layer(fitted, images):
    X, _ = images
    assert find_target_layer(fitted)[0] == "layer4"
    maps = grad_cam(fitted, X[:3])
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all() and maps.max() > 0


def test_save_and_load_round_trip(fitted, images, tmp_path, weights_env):
    X, _ = images
    path = fitted.save(tmp_path / "model.safetensors")
    reloaded = load(path)
    np.testing.assert_array_equal(reloaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).predict_proba(X), fitted.predict_proba(X))


def test_save_and_load_a_model_trained_from_scratch_with_upsampling(tmp_path):
    X = np.random.default_rng(1).random((16, 1, 20, 20)).astype(np.float32)
    clf = CNNClassifier("timm:test_convnext", max_epochs=1, batch_size=8, precision="fp32", random_state=0).fit(
        X, np.arange(16) % 2)
    reloaded = load(clf.save(tmp_path / "scratch.safetensors"))
    np.testing.assert_array_equal(reloaded.predict_proba(X), clf.predict_proba(X))


def test_onnx_export_matches_predict_proba(fitted, images, tmp_path):
    import onnx

    X, _ = images
    path = fitted.to_onnx(str(tmp_path / "timm.onnx"))
    (probabilities,) = ort.InferenceSession(path).run(None, {"images": (X.transpose(0, 3, 1, 2) / 255).astype(np.float32)})
    np.testing.assert_allclose(probabilities, fitted.predict_proba(X), atol=1e-4)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert json.loads(meta["image_shape"]) == [3, 16, 16]


def test_backbone_features(images, weights_env):
    X, _ = images
    features = BackboneFeatures("timm:test_resnet", weights=TAG, input_size=(32, 32)).fit(X)
    out = features.transform(X[:5])
    assert out.shape == (5, 96) and features.n_features_out_ == 96  # test_resnet's num_features
    assert np.isfinite(out).all()


def test_lr_find(images, weights_env):
    X, y = images
    clf = TransferClassifier("timm:test_resnet", weights=TAG, input_size=(32, 32), batch_size=8, random_state=0)
    result = clf.lr_find(X, y, num_steps=5)
    assert len(result.lrs) == 5 and np.isfinite(result.losses).all()
    assert result.suggested_lr == pytest.approx(result.lrs[np.argmin(result.losses)] / 10)
    assert not hasattr(clf, "net_")


def test_timm_backbones_are_leaderboard_candidates(images, weights_env):
    X, y = images
    board = leaderboard(X, y, {
        "timm-transfer": TransferClassifier("timm:test_resnet", weights=TAG, input_size=(32, 32), max_epochs=1,
                                            random_state=0),
        "timm-scratch": CNNClassifier("timm:test_efficientnet", max_epochs=1, random_state=0),
        "bn_cnn": CNNClassifier("bn_cnn", max_epochs=1, random_state=0),
    }, cv=2, refit=False, random_state=0)
    assert dict(zip(board["name"], board["status"])) == {"timm-transfer": "ok", "timm-scratch": "ok", "bn_cnn": "ok"}


def test_estimators_with_timm_backbones_clone_and_pickle_before_fit():
    clf = TransferClassifier("timm:test_vit", weights=TAG)
    assert clone(clf).get_params()["backbone"] == "timm:test_vit"
    spec = get_registry().get("backbone", "timm:test_vit")
    assert pickle.loads(pickle.dumps(spec.weights[0])) == spec.weights[0]
    assert pickle.loads(pickle.dumps(spec.build)).args == ("test_vit",)


def test_timm_spec_refuses_unknown_models_with_close_matches():
    with pytest.raises(ValueError, match=r"timm has no model 'resnet19'. Did you mean .*'resnet18'"):
        timm_spec("resnet19")
    with pytest.raises(ValueError, match=r"register 'resnet18' and pass weights='a1_in1k'"):
        timm_spec("resnet18.a1_in1k")
