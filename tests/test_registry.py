"""The plugin registry: discovery, listing, lookup errors, duplicates, blocking."""

from __future__ import annotations

import pytest
import torch

from sklearn_imgcls.plugin.hookspecs import PluginDeprecationWarning
import sklearn_imgcls
from sklearn_imgcls.plugin import hookspecs
from sklearn_imgcls.plugin.discovery import DEFAULT_PLUGINS, PluginError, make_plugin_manager
from sklearn_imgcls.plugin.registry import (
    KINDS,
    DuplicateComponentError,
    Registry,
    UnknownComponentError,
    get_registry,
)
from tests.plugins import duplicate_backbone, tiny_linear, unknown_hook, wrong_spec_type

BUILTIN_BACKBONES = {
    "simple_cnn", "bn_cnn", "resnet18", "resnet50", "vgg16", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
    "mobilenet_v3_large", "convnext_tiny", "vit_b_16",
}


def builtin_registry() -> Registry:
    return Registry(*make_plugin_manager(load_entry_points=False, blocked=()))


def test_builtins_are_listed_through_the_public_functions():
    assert BUILTIN_BACKBONES <= set(sklearn_imgcls.list_backbones())
    assert {"cross_entropy", "label_smoothing"} <= set(sklearn_imgcls.list_losses())
    assert {"flip_h", "flip_v", "random_crop"} <= set(sklearn_imgcls.list_augmentations())
    assert {"oversample", "undersample"} <= set(sklearn_imgcls.list_samplers())
    assert set(sklearn_imgcls.list_backbones(tag="torchvision")) == BUILTIN_BACKBONES - {"simple_cnn", "bn_cnn"}


def test_every_hook_has_a_spec_and_a_kind():
    hook_names = {name for name in dir(hookspecs) if "register_" in name}
    assert {hook for hook, _ in KINDS.values()} == set(hookspecs.HOOKS.values())
    assert hook_names == set(hookspecs.HOOKS.values()) | set(hookspecs.DEPRECATED_HOOKS.values())
    assert all(name.startswith("sklearn_imgcls_") for name in hookspecs.HOOKS.values())
    for name in hook_names:
        assert getattr(hookspecs, name).__doc__.strip()


def test_specs_remember_their_plugin():
    spec = builtin_registry().get("backbone", "resnet18")
    assert spec.plugin == "sklearn_imgcls.builtin.torchvision_backbones"
    assert spec.target_layer == "layer4"


def test_unknown_name_lists_close_matches_and_everything_available():
    with pytest.raises(UnknownComponentError) as info:
        builtin_registry().get("backbone", "resnet19")
    message = str(info.value)
    assert "Did you mean 'resnet18' or 'resnet50'?" in message
    for name in BUILTIN_BACKBONES:
        assert name in message
    assert isinstance(info.value, ValueError)


def test_duplicate_names_raise_naming_both_plugins():
    registry = builtin_registry()
    registry.register_plugin(duplicate_backbone, name="impostor")
    with pytest.raises(DuplicateComponentError, match="sklearn_imgcls.builtin.cnn_backbones.*impostor"):
        registry.specs("backbone")


def test_hookimpl_without_spec_is_an_error():
    registry = builtin_registry()
    with pytest.raises(PluginError, match="register_optimisers.*Known hooks: sklearn_imgcls_register_augmentations"):
        registry.register_plugin(unknown_hook, name="unknown_hook")
    assert "unknown_hook" not in dict(registry.plugins())


def test_wrong_spec_type_is_reported():
    registry = builtin_registry()
    registry.register_plugin(wrong_spec_type, name="wrong")
    with pytest.raises(TypeError, match="expected BackboneSpec"):
        registry.specs("backbone")


def test_block_env_var_removes_named_plugins(monkeypatch, fresh_registry):
    assert "lenet5" in get_registry().names("backbone")  # the example plugin is installed, so blocking is what removes it
    monkeypatch.setenv("SKLEARN_IMGCLS_BLOCK_PLUGINS", " sklearn_imgcls.builtin.torchvision_backbones ,example")
    from sklearn_imgcls.plugin.registry import reset_registry

    reset_registry()
    names = get_registry().names("backbone")
    assert "simple_cnn" in names
    assert "resnet18" not in names
    assert "lenet5" not in names


def test_runtime_plugin_registration_and_removal():
    registry = builtin_registry()
    with pytest.warns(PluginDeprecationWarning) as caught:  # written for 0.1: still works, with a warning per old hook
        registry.register_plugin(tiny_linear, name="tiny")
    assert any("plugin 'tiny' implements the deprecated hook register_backbones" in str(w.message) for w in caught)
    assert "tiny_linear" in registry.names("backbone", tag="test")
    registry.unregister_plugin("tiny")
    assert "tiny_linear" not in registry.names("backbone")


def test_build_rejects_unknown_parameters_with_the_accepted_signature():
    with pytest.raises(TypeError, match="Cannot build loss 'cross_entropy'.*gamma.*Accepted"):
        sklearn_imgcls.build_loss("cross_entropy", gamma=2.0)


def test_default_plugins_are_modules_with_hookimpls():
    pm, distributions = make_plugin_manager(load_entry_points=False, blocked=())
    assert [name for name, _ in pm.list_name_plugin()] == list(DEFAULT_PLUGINS)
    assert set(distributions.values()) == {"sklearn-imgcls"}


@pytest.mark.parametrize("name", sorted(BUILTIN_BACKBONES) + ["lenet5"])
@pytest.mark.parametrize("channels,size", [(1, (8, 8)), (3, (12, 20))])
def test_every_backbone_maps_any_image_size_to_logits(name, channels, size):
    if name in ("vgg16", "vit_b_16") and channels == 3:
        pytest.skip("one case is enough for the largest networks")
    torch.manual_seed(0)
    model = sklearn_imgcls.build_backbone(name, channels, 4, size)
    model.eval()
    logits = model(torch.randn(2, channels, *size))
    assert logits.shape == (2, 4)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["simple_cnn", "bn_cnn", "resnet18", "mobilenet_v3_small"])
def test_backbones_learn_in_one_step(name):
    torch.manual_seed(0)
    model = sklearn_imgcls.build_backbone(name, 1, 3, (8, 8))
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_builtin_losses_match_torch_cross_entropy():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    targets = torch.tensor([0, 1])
    weight = torch.tensor([1.0, 2.0, 0.5])
    expected = torch.nn.functional.cross_entropy(logits, targets, weight=weight)
    assert torch.isclose(sklearn_imgcls.build_loss("cross_entropy", class_weight=weight)(logits, targets), expected)
    smoothed = sklearn_imgcls.build_loss("label_smoothing", smoothing=0.2)(logits, targets)
    assert torch.isclose(smoothed, torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.2))
    with pytest.raises(ValueError, match="smoothing"):
        sklearn_imgcls.build_loss("label_smoothing", smoothing=1.5)


def test_unknown_loss_lists_the_available_losses_in_plain_english():
    with pytest.raises(ValueError, match="Available losses: "):
        get_registry().get("loss", "no_such_loss")
