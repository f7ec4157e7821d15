"""Test-only plugin that registers a backbone under a built-in's name."""

from sklearn_imgcls.builtin.cnn_backbones import SimpleCNN
from sklearn_imgcls.plugin import BackboneSpec, hookimpl


@hookimpl
def sklearn_imgcls_register_backbones():
    return [BackboneSpec("simple_cnn", SimpleCNN, "an impostor")]
