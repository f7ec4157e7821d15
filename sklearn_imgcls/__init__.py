"""sklearn-imgcls: image classification as ordinary scikit-learn estimators.

Public names are imported lazily, so ``import sklearn_imgcls`` stays cheap
(torch is imported only when an estimator or registry helper is used).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sklearn-imgcls")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = {
    "BackboneFeatures": "sklearn_imgcls.features",
    "CNNClassifier": "sklearn_imgcls.cnn",
    "TransferClassifier": "sklearn_imgcls.transfer",
    "describe_backbones": "sklearn_imgcls.plugin.catalog",
    "describe_weights": "sklearn_imgcls.plugin.catalog",
    "build_augmentation": "sklearn_imgcls.plugin.catalog",
    "build_backbone": "sklearn_imgcls.plugin.catalog",
    "build_corruption": "sklearn_imgcls.plugin.catalog",
    "build_loss": "sklearn_imgcls.plugin.catalog",
    "build_sampler": "sklearn_imgcls.plugin.catalog",
    "list_augmentations": "sklearn_imgcls.plugin.catalog",
    "list_backbones": "sklearn_imgcls.plugin.catalog",
    "list_corruptions": "sklearn_imgcls.plugin.catalog",
    "list_losses": "sklearn_imgcls.plugin.catalog",
    "list_plugins": "sklearn_imgcls.plugin.catalog",
    "list_samplers": "sklearn_imgcls.plugin.catalog",
    "get_registry": "sklearn_imgcls.plugin.registry",
    "hookimpl": "sklearn_imgcls.plugin.hookspecs",
    "load": "sklearn_imgcls.persistence",
    "corruption_report": "sklearn_imgcls.corruption",
    "corruption_scorer": "sklearn_imgcls.corruption",
    "rotation_curve": "sklearn_imgcls.corruption",
    "shift_curve": "sklearn_imgcls.corruption",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sklearn_imgcls' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
