"""Test-only plugin returning a loss spec from the backbone hook."""

from torch import nn

from sklearn_imgcls.plugin import LossSpec, hookimpl


@hookimpl
def sklearn_imgcls_register_backbones():
    return [LossSpec("not_a_backbone", nn.CrossEntropyLoss)]
