"""sklearn-imgcls plugin: timm's model zoo as backbones named ``timm:<model>``.

Registered through the ``sklearn_imgcls`` entry point group (plugin name
``timm``), so ``pip install sklearn-imgcls-timm`` is all it takes::

    from sklearn_imgcls import CNNClassifier, TransferClassifier
    CNNClassifier(backbone="timm:resnet18").fit(X, y)                       # from scratch
    TransferClassifier("timm:resnet18", weights="a1_in1k").fit(X, y)        # fine-tuned, offline weights

Which models are listed
-----------------------
The registry lists its specs eagerly, and a spec needs facts read from timm
(and, for the Grad-CAM layer, a network built on the ``meta`` device), so
registering all ~1,400 timm architectures would make every
``list_backbones()``, every unknown-name message and ``sklearn-imgcls
plugins`` slow and unreadable. The plugin therefore lists

* a curated default set across families (:data:`CURATED`), and
* any other timm model named in the environment variable
  ``SKLEARN_IMGCLS_TIMM_MODELS`` (comma-separated names or ``timm.list_models``
  patterns: ``"resnet34,efficientnet_b*"``). Environment variables reach
  joblib's worker processes and later sessions, so models registered this
  way also work in ``GridSearchCV(n_jobs=2)`` and when a saved model is loaded.
  :func:`add_models` registers more in the running process only.

Weights are loaded offline: see :mod:`sklearn_imgcls_timm.weights`.
"""

from __future__ import annotations

import os

from sklearn_imgcls.plugin import hookimpl

__all__ = ["CURATED", "MODELS_ENV", "TimmBackbones", "add_models", "curated_specs", "extra_model_names",
           "sklearn_imgcls_register_backbones"]

#: environment variable naming extra timm models to register (comma-separated names or patterns)
MODELS_ENV = "SKLEARN_IMGCLS_TIMM_MODELS"

#: the default set: timm model -> (description, Grad-CAM target layer = last ``feature_info`` module, family)
CURATED: dict[str, tuple[str, str, str]] = {
    "resnet10t": ("ResNet-10-T (timm), tiered stem, 5.4M parameters", "layer4", "resnet"),
    "resnet18": ("ResNet-18 (He et al., 2016), 11.7M parameters", "layer4", "resnet"),
    "resnet50": ("ResNet-50 (He et al., 2016), 25.6M parameters", "layer4", "resnet"),
    "efficientnet_b0": ("EfficientNet-B0 (Tan & Le, 2019), 5.3M parameters", "blocks.6", "efficientnet"),
    "mobilenetv3_small_050": ("MobileNetV3-Small 0.5x (Howard et al., 2019), 1.6M parameters", "blocks.5",
                              "mobilenetv3"),
    "mobilenetv3_small_100": ("MobileNetV3-Small (Howard et al., 2019), 2.5M parameters", "blocks.5", "mobilenetv3"),
    "mobilenetv3_large_100": ("MobileNetV3-Large (Howard et al., 2019), 5.5M parameters", "blocks.6", "mobilenetv3"),
    "regnety_002": ("RegNetY-200MF (Radosavovic et al., 2020), 3.2M parameters", "s4", "regnet"),
    "regnety_008": ("RegNetY-800MF (Radosavovic et al., 2020), 6.3M parameters", "s4", "regnet"),
    "convnext_atto": ("ConvNeXt-Atto (Liu et al., 2022; timm), 3.7M parameters", "stages.3", "convnext"),
    "convnext_nano": ("ConvNeXt-Nano (Liu et al., 2022; timm), 15.6M parameters", "stages.3", "convnext"),
    "vit_tiny_patch16_224": ("ViT-Ti/16 (Dosovitskiy et al., 2021; AugReg), 5.7M parameters", "blocks.11", "vit"),
}


def curated_specs() -> list:
    """The specs of :data:`CURATED` (no network is built).

    Returns
    -------
    list of BackboneSpec
    """
    from .backbones import timm_spec

    return [timm_spec(model, description, target, (family,)) for model, (description, target, family) in CURATED.items()]


def extra_model_names() -> list[str]:
    """The timm models ``SKLEARN_IMGCLS_TIMM_MODELS`` names, patterns expanded, curated ones left out.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        For an entry that matches no timm model; names the variable and the entry.
    """
    import timm

    names: list[str] = []
    for entry in (part.strip() for part in os.environ.get(MODELS_ENV, "").split(",")):
        if not entry:
            continue
        matches = timm.list_models(entry) if any(c in entry for c in "*?[") else [entry]
        if not matches or (matches == [entry] and not timm.is_model(entry)):
            import difflib

            close = difflib.get_close_matches(entry, timm.list_models(), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"{MODELS_ENV} names {entry!r}, which matches no timm model.{hint} "
                             f"Fix the variable (comma-separated timm.list_models() names or patterns).")
        names += [m for m in matches if m not in CURATED and m not in names]
    return names


class TimmBackbones:
    """A plugin object that registers the timm models it is given.

    Parameters
    ----------
    models : iterable of str
        timm model names (``timm.list_models()``).

    Examples
    --------
    >>> from sklearn_imgcls import get_registry
    >>> get_registry().register_plugin(TimmBackbones(["resnet34"]), name="timm-resnet34")  # doctest: +SKIP
    'timm-resnet34'
    """

    def __init__(self, models) -> None:
        self.models = [str(m) for m in models]

    @hookimpl
    def sklearn_imgcls_register_backbones(self) -> list:
        """Register ``timm:<model>`` for each model given."""
        from .backbones import timm_spec

        return [timm_spec(model) for model in self.models]


def add_models(*models: str) -> list[str]:
    """Register more timm models as ``timm:<model>`` in the running process.

    Only this process sees them: for joblib workers and for loading saved
    models in a later session, name them in ``SKLEARN_IMGCLS_TIMM_MODELS``.

    Parameters
    ----------
    *models : str
        timm model names.

    Returns
    -------
    list of str
        The registry names added (models already registered are skipped).

    Raises
    ------
    ValueError
        For a name timm does not know (with close matches).
    """
    from sklearn_imgcls.plugin import get_registry

    from .backbones import PREFIX, timm_spec

    registry = get_registry()
    known = set(registry.names("backbone"))
    new = [m for m in dict.fromkeys(models) if PREFIX + m not in known]
    for model in new:
        timm_spec(model)  # fail now, by name, rather than when the registry is next listed
    if new:
        registry.register_plugin(TimmBackbones(new), name=f"timm-extra-{'-'.join(new)}")
    return [PREFIX + m for m in new]


@hookimpl
def sklearn_imgcls_register_backbones() -> list:
    """Register the curated timm models and those named in ``SKLEARN_IMGCLS_TIMM_MODELS``."""
    from .backbones import timm_spec

    return curated_specs() + [timm_spec(model) for model in extra_model_names()]
