"""Contract v2 for backbones: declared layers, declared pretrained weights, weights sources, listings."""

from __future__ import annotations

import hashlib
import shutil
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import sklearn_imgcls
from sklearn_imgcls import BackboneFeatures, CNNClassifier, TransferClassifier
from sklearn_imgcls._core.layers import UndeclaredLayerWarning, declared_layer, resolve_layer
from sklearn_imgcls._core.weights import WeightsError, hub_checkpoint_path
from sklearn_imgcls.explain import find_target_layer, grad_cam
from sklearn_imgcls.plugin import BackboneSpec, PretrainedWeights, hookimpl
from sklearn_imgcls.plugin.catalog import describe_backbones, describe_weights
from sklearn_imgcls.plugin.registry import get_registry
from sklearn_imgcls.plugin.sources import FileWeights, UrlWeights, file_weights, url_weights

MEAN, STD = (0.1, 0.2, 0.3), (0.5, 0.25, 0.5)


class AuxHeadNet(nn.Module):
    """The head is ``head``; an auxiliary projection ``aux`` is the *last* nn.Linear (the old guess)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.block = nn.Conv2d(4, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(6, num_classes)
        self.aux = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.pool(self.act(self.block(self.act(self.stem(x))))).flatten(1))


class ConvHeadNet(nn.Module):
    """A SqueezeNet-style 1x1-convolution head, pooled to logits."""

    def __init__(self, in_channels: int, num_classes: int, image_size) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, num_classes, 1)

    def forward(self, x):
        return self.head(self.stem(x)).mean(dim=(2, 3))


class Resized(nn.Module):
    """A wrapper around the network the names describe (declared through sklearn_imgcls_inner)."""

    sklearn_imgcls_inner = "net"

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _undeclared(in_channels, num_classes, image_size):
    return nn.Sequential(nn.Conv2d(in_channels, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * image_size[0] * image_size[1], num_classes))


@pytest.fixture
def toy_plugin(tmp_path):
    """A plugin whose backbones declare their layers, with two pretrained weights files written here."""
    torch.manual_seed(1)
    states = {name: AuxHeadNet(3, 5).state_dict() for name in ("toy1k", "toy_alt")}
    for name, state in states.items():
        torch.save(state, tmp_path / f"{name}.pth")
    layers = dict(classifier="head", first_conv="stem", target_layer="stem")
    specs = [
        BackboneSpec("aux_head_net", lambda c, n, size: AuxHeadNet(c, n), "head is not the last Linear",
                     build_native=lambda n: AuxHeadNet(3, n), **layers, weights=(
                         PretrainedWeights("toy_alt", file_weights(tmp_path / "toy_alt.pth"), num_classes=5),
                         PretrainedWeights("toy1k", file_weights(tmp_path / "toy1k.pth"), num_classes=5,
                                           input_size=(16, 16), mean=MEAN, std=STD, default=True,
                                           description="written by the test"))),
        BackboneSpec("conv_head_net", ConvHeadNet, "1x1 conv head", classifier="head", first_conv="stem.0",
                     target_layer="stem.-1"),
        BackboneSpec("wrapped_net", lambda c, n, size: Resized(AuxHeadNet(c, n)), "wrapped", **layers),
        BackboneSpec("broken_load", AuxHeadNet, "load returns junk", build_native=lambda n: AuxHeadNet(3, n),
                     **layers, weights=(PretrainedWeights("junk", lambda: [1, 2]),
                                        PretrainedWeights("gone", lambda: (_ for _ in ()).throw(
                                            OSError("put gone.pth in /nowhere"))))),
        BackboneSpec("undeclared_net", _undeclared, "declares nothing"),
    ]
    plugin = types.ModuleType("toy_backbones")
    plugin.sklearn_imgcls_register_backbones = hookimpl(lambda: specs)
    registry = get_registry()
    name = registry.register_plugin(plugin, name="toy_backbones")
    yield states
    registry.unregister_plugin(name)


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 12)
    X = rng.uniform(0, 0.5, (36, 3, 12, 12)).astype(np.float32)
    X[np.arange(36), y] += 0.5
    return X, y


FAST = dict(max_epochs=1, batch_size=12, random_state=0)


def test_declared_head_is_fine_tuned_from_declared_weights(toy_plugin, rgb, tmp_path):
    X, y = rgb
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndeclaredLayerWarning)
        clf = TransferClassifier("aux_head_net", weights="DEFAULT", freeze="backbone", fine_tune_epochs=0, **FAST)
        clf.fit(X, y)
    net, state = clf.net_.module_, toy_plugin["toy1k"]
    assert net.backbone.head.out_features == 3  # the declared head was replaced ...
    assert torch.equal(net.backbone.aux.weight, state["aux.weight"])  # ... not the last nn.Linear
    assert torch.equal(net.backbone.stem.weight, state["stem.weight"])  # loaded and frozen
    assert "head.weight" not in clf.frozen_parameters_ and "stem.weight" in clf.frozen_parameters_
    np.testing.assert_allclose(net.mean.flatten().numpy(), MEAN)  # declared normalisation and input size
    np.testing.assert_allclose(net.std.flatten().numpy(), STD)
    assert net.input_size == (16, 16) and net.recipe["source"] == "native"
    loaded = sklearn_imgcls.load(clf.save(str(tmp_path / "toy.safetensors")))  # rebuilt through build_native
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    named = TransferClassifier("aux_head_net", weights="toy_alt", freeze="backbone", fine_tune_epochs=0, **FAST)
    alt = named.fit(X, y).net_.module_
    assert torch.equal(alt.backbone.stem.weight, toy_plugin["toy_alt"]["stem.weight"]) and alt.input_size == (224, 224)
    features = BackboneFeatures("aux_head_net", weights="toy1k").fit(X)
    assert features.transform(X).shape == (36, 6)  # the declared head became the identity


def test_unknown_default_broken_and_missing_weights_are_explained(toy_plugin, rgb):
    X, y = rgb
    with pytest.raises(WeightsError, match="Unknown weights 'nope' for aux_head_net. Available: 'DEFAULT', 'toy_alt', "
                                           "'toy1k'"):
        TransferClassifier("aux_head_net", weights="nope", **FAST).fit(X, y)
    with pytest.raises(WeightsError, match="load\\(\\) of weights broken_load/junk .*returned list, not a state dict"):
        TransferClassifier("broken_load", weights="DEFAULT", **FAST).fit(X, y)  # no default marked: the first
    with pytest.raises(OSError, match="broken_load/gone: put gone.pth in /nowhere") as caught:
        TransferClassifier("broken_load", weights="gone", **FAST).fit(X, y)
    assert isinstance(caught.value, WeightsError)


def test_one_by_one_conv_head_and_negative_indices(toy_plugin, rgb):
    X, y = rgb
    clf = TransferClassifier("conv_head_net", weights=None, **FAST).fit(X, y)
    head = clf.net_.module_.backbone.head
    assert isinstance(head, nn.Conv2d) and head.out_channels == 3 and clf.predict(X).shape == (36,)
    assert find_target_layer(clf)[0] == "stem.1"  # "stem.-1": the last child of stem
    features = BackboneFeatures("conv_head_net", weights=None).fit(X)
    assert features.transform(X[:2]).shape == (2, 4)


def test_grad_cam_reads_the_declared_layer_also_inside_a_wrapper(toy_plugin, rgb):
    X, y = rgb
    for backbone, expected in (("aux_head_net", "stem"), ("wrapped_net", "net.stem")):
        clf = CNNClassifier(backbone, **FAST).fit(X, y)
        name, module = find_target_layer(clf)
        assert name == expected and module is clf.net_.module_.backbone.get_submodule(expected)
        assert grad_cam(clf, X[:2]).shape == (2, 12, 12)
    wrapped = TransferClassifier("wrapped_net", weights=None, **FAST).fit(X, y)
    assert wrapped.net_.module_.backbone.net.head.out_features == 3  # declared names resolve under the wrapper


def test_a_plugin_that_declares_nothing_fits_and_warns_once_per_field(toy_plugin, rgb):
    X, y = rgb
    with pytest.warns(UndeclaredLayerWarning, match="'undeclared_net' declares no classifier.*guessing '3'.*"
                                                   "BackboneSpec\\(classifier=\\.\\.\\.\\)"):
        clf = TransferClassifier("undeclared_net", weights=None, **FAST).fit(X, y)
    assert clf.net_.module_.backbone[3].out_features == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndeclaredLayerWarning)  # once per backbone and field
        TransferClassifier("undeclared_net", weights=None, **FAST).fit(X, y)
    cnn = CNNClassifier("undeclared_net", **FAST).fit(X, y)
    with pytest.warns(UndeclaredLayerWarning, match="declares no target_layer.*guessing '1'"):
        assert find_target_layer(cnn)[0] == "1"


def test_a_declared_name_missing_from_the_network_names_the_field(toy_plugin):
    spec = BackboneSpec("typo", AuxHeadNet, classifier="haed")
    with pytest.raises(ValueError, match="declares classifier='haed'.*stem, block.*BackboneSpec\\(classifier=...\\)"):
        declared_layer(spec, AuxHeadNet(), "classifier")
    assert resolve_layer(Resized(AuxHeadNet()), "head") == "net.head" and resolve_layer(AuxHeadNet(), "x.-1") is None


def _builtin_specs():
    return [s for s in get_registry().specs("backbone").values() if s.plugin.startswith("sklearn_imgcls.builtin")]


def test_no_built_in_backbone_relies_on_a_guess():
    """Every built-in declares its three layers; they exist in build's and build_native's networks."""
    specs = _builtin_specs()
    assert {"simple_cnn", "bn_cnn", "resnet18", "vit_b_16"} <= {s.name for s in specs}
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("error", UndeclaredLayerWarning)
        for spec in specs:
            networks = [spec.build(1, 3, (8, 8)), spec.build(3, 3, (4, 4))]
            networks += [spec.build_native(3)] if spec.build_native is not None else []
            for network in networks:
                head = network.get_submodule(declared_layer(spec, network, "classifier"))
                assert isinstance(head, nn.Linear), spec.name
                assert network.get_submodule(declared_layer(spec, network, "first_conv")).weight.ndim == 4
                declared_layer(spec, network, "target_layer")
    bn = get_registry().get("backbone", "bn_cnn")
    for size in ((16, 16), (4, 4), (1, 1)):  # the last block pools or not: the target is its activation
        network = bn.build(1, 2, size)
        assert isinstance(network.get_submodule(declared_layer(bn, network, "target_layer")), nn.ReLU), size


def test_torchvision_weights_are_declared_from_torchvision_metadata(monkeypatch, tmp_path):
    from torchvision.models import get_model_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = get_registry().get("backbone", "resnet50")
    enum = get_model_weights("resnet50")
    assert [w.name for w in spec.weights] == [m.name for m in enum]
    assert spec.default_weights().name == enum.DEFAULT.name and spec.input_size == (224, 224)
    for declared in spec.weights:
        member = enum[declared.name]
        preset = member.transforms()
        assert isinstance(declared.load, UrlWeights) and declared.load.url == member.url
        assert declared.load.path == hub_checkpoint_path(member.url) and declared.load.path.startswith(str(tmp_path))
        assert declared.mean == tuple(preset.mean) and declared.std == tuple(preset.std)
        assert declared.input_size == (preset.crop_size[0],) * 2 and declared.num_classes == 1000
    vit = [w.name for w in get_registry().get("backbone", "vit_b_16").weights]
    assert "IMAGENET1K_V1" in vit and "IMAGENET1K_SWAG_E2E_V1" not in vit  # another variant (384 px)


# -- sources: ready-made loaders ---------------------------------------------------------------------


def _write(path, state):
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


STATE = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_file_weights_reads_both_formats_and_names_a_missing_file(tmp_path, suffix):
    loader = file_weights(_write(tmp_path / f"w{suffix}", STATE))
    assert isinstance(loader, FileWeights) and loader.available()
    assert all(torch.equal(loader()[k], v) for k, v in STATE.items())
    with pytest.raises(OSError, match=f"not found: {tmp_path}.*missing{suffix}. Put the weights file there"):
        file_weights(tmp_path / f"missing{suffix}")()


def test_file_weights_refuses_pickled_code_and_bad_arguments(tmp_path):
    torch.save({"w": torch.ones(1), "payload": types.SimpleNamespace()}, tmp_path / "evil.pth")
    with pytest.raises(OSError, match="evil.pth.*weights_only.*Replace the file"):
        file_weights(tmp_path / "evil.pth")()
    with pytest.raises(TypeError, match="path must be a file path"):
        file_weights(3)
    with pytest.raises(TypeError, match="url must be a non-empty string"):
        url_weights("")
    with pytest.raises(ValueError, match="sha256 must be 8 to 64 hexadecimal digits"):
        url_weights("https://example.org/w.pth", sha256="xyz")


def test_url_weights_downloads_once_into_the_hub_cache_checking_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    source = _write(tmp_path / "w.pth", STATE)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    published = tmp_path / "site" / f"net-{digest[:8]}.pth"  # torch's name-<hash prefix>.pth convention
    published.parent.mkdir()
    shutil.copy(source, published)
    loader = url_weights(published.as_uri())
    assert not loader.available() and loader.path == str(tmp_path / "home" / "hub" / "checkpoints" / published.name)
    assert torch.equal(loader()["w"], STATE["w"]) and loader.available()
    published.unlink()  # cached: no download needed any more
    assert torch.equal(loader()["b"], STATE["b"])
    renamed = url_weights(published.as_uri(), file_name="mine.pth", sha256=digest)
    with pytest.raises(OSError, match="not cached and could not be downloaded.*put it at .*mine.pth"):
        renamed()
    shutil.copy(source, renamed.path)
    assert torch.equal(renamed()["w"], STATE["w"])  # a file put by hand, its SHA-256 checked
    shutil.copy(source, tmp_path / "site" / "liar-00000000.pth")
    with pytest.raises(OSError, match="SHA-256 does not match the one declared"):
        url_weights((tmp_path / "site" / "liar-00000000.pth").as_uri())()
    with open(renamed.path, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(OSError, match="mine.pth does not have the SHA-256"):
        renamed()


# -- listings ----------------------------------------------------------------------------------------


def test_listings_show_weights_input_size_plugin_and_source(toy_plugin, capsys):
    table = describe_backbones().set_index("name")
    row = table.loc["aux_head_net"]
    assert row["weights"] == "toy1k, toy_alt" and row["input_size"] == (16, 16) and row["plugin"] == "toy_backbones"
    assert row["mean"] == MEAN and row["weights_source"].endswith("toy1k.pth")
    assert table.loc["resnet18", "weights_source"].startswith("https://download.pytorch.org/")
    assert table.loc["resnet18", "package"] == "sklearn-imgcls" and table.loc["undeclared_net", "weights"] == ""
    weights = describe_weights("aux_head_net").set_index("weights")
    assert weights.loc["toy1k", "default"] and not weights.loc["toy_alt", "default"]
    assert weights.loc["toy1k", "cached"] and weights.loc["toy1k", "description"] == "written by the test"
    from sklearn_imgcls.cli.main import main

    assert main(["plugins"]) == 0
    printed = capsys.readouterr().out
    assert "aux_head_net" in printed and "[toy_backbones from" in printed
    assert "[sklearn_imgcls.builtin.torchvision_backbones from sklearn-imgcls]" in printed
