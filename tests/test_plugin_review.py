"""What a plugin author's first try found: each case used to pass silently or end in a library traceback."""

from __future__ import annotations

import pytest
from torch import nn

from sklearn_imgcls import CNNClassifier, TransferClassifier, load
from sklearn_imgcls.plugin import BackboneSpec, hookimpl
from sklearn_imgcls.plugin.registry import get_registry


class Pooled(nn.Module):
    """A small CNN whose global pooling is a named layer (a tempting but useless Grad-CAM target)."""

    def __init__(self, in_channels: int, num_classes: int, image_size=None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.gap(self.conv(x).relu()).flatten(1))


def rgb_only(in_channels, num_classes, image_size):
    return Pooled(3, num_classes)  # ignores in_channels


class Plugin:
    @hookimpl
    def sklearn_imgcls_register_backbones(self):
        return [
            BackboneSpec("pooled_target", Pooled, "targets the pooled output", classifier="fc", first_conv="conv",
                         target_layer="gap"),
            BackboneSpec("rgb_only", rgb_only, "ignores in_channels", classifier="fc", first_conv="conv",
                         target_layer="conv"),
            BackboneSpec("wrong_head", Pooled, "declares a head it has not", classifier="head", first_conv="conv",
                         target_layer="conv"),
        ]


@pytest.fixture
def review_plugin(fresh_registry):
    get_registry().register_plugin(Plugin(), name="review_plugin")


def test_the_kit_refuses_a_target_layer_with_a_single_position(review_plugin):
    from sklearn_imgcls.testing import PluginCheckError, check_backbone

    with pytest.raises(PluginCheckError, match=r"target_layer='gap' outputs torch.Size\(\[\d+, 4, 1, 1\]\).*a global pooling gives one position"):
        check_backbone("pooled_target")


def test_a_build_that_ignores_in_channels_is_named_before_torch_fails(review_plugin, digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match=r"Backbone 'rgb_only' \(plugin 'review_plugin'\) was asked for 1-channel "
                                         r"images but its first_conv takes 3 channels"):
        CNNClassifier("rgb_only", image_shape=(1, 8, 8), max_epochs=1).fit(X, y)


def test_a_wrong_classifier_name_names_the_plugin(review_plugin, digits_small):
    X, y = digits_small
    with pytest.raises(ValueError, match=r"declares classifier='head'.*plugin that registers it \('review_plugin'\)"):
        TransferClassifier("wrong_head", weights=None, image_shape=(1, 8, 8), max_epochs=1).fit(X, y)


def test_loading_a_model_whose_plugin_is_gone_says_what_to_install(fresh_registry, digits_small, tmp_path):
    X, y = digits_small
    get_registry().register_plugin(Plugin(), name="review_plugin")
    path = CNNClassifier("pooled_target", image_shape=(1, 8, 8), max_epochs=1, random_state=0).fit(X, y).save(
        tmp_path / "model.safetensors")
    get_registry().unregister_plugin("review_plugin")
    with pytest.raises(ValueError, match=r"backbone 'pooled_target' \(field 'architecture'\), which no loaded plugin registers: install or "
                                         r"enable the plugin") as caught:
        load(path)
    assert "damaged" not in str(caught.value)
    get_registry().register_plugin(Plugin(), name="review_plugin")
    assert load(path).predict(X[:3]).shape == (3,)  # the file itself was fine


def test_the_kit_refuses_a_select_that_matches_nothing_instead_of_passing():
    from sklearn_imgcls.testing import check_plugin

    with pytest.raises(ValueError, match=r"select names \['pooled'\], which plugin .* does not register; "
                                         r"it registers pooled_target, rgb_only, wrong_head"):
        check_plugin(Plugin(), select=["pooled"])
    with pytest.raises(TypeError, match=r"write select=\['pooled_target'\]"):
        check_plugin(Plugin(), select="pooled_target")
