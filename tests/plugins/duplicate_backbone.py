"""Test-only plugin that registers a backbone under a built-in's name."""

from sklearn_imgcls.builtin.cnn_backbones import SimpleCNN
from sklearn_imgcls.hookspecs import hookimpl
from sklearn_imgcls.specs import BackboneSpec


@hookimpl
def register_backbones():
    return [BackboneSpec("simple_cnn", SimpleCNN, "an impostor")]
