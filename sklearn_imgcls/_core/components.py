"""The registry components a fit uses, resolved from what their specs declare.

The estimators never infer what a component is from its signature or
attributes: a :class:`~sklearn_imgcls.plugin.specs.LossSpec` declares
``soft_targets``, ``needs_class_priors`` and ``sample_weights``, an
:class:`~sklearn_imgcls.plugin.specs.AugmentationSpec` ``mixes_labels`` (read
through :class:`~sklearn_imgcls.plugin.registry.ComponentChain`), and a
:class:`~sklearn_imgcls.plugin.specs.SamplerSpec` its ``stage``. Combinations
that cannot work are refused here, by name, before anything is trained.

Plugins on the deprecated hooks (written for sklearn-imgcls 0.1, before these
declarations existed; they get a ``PluginDeprecationWarning`` when registered) fall
back to what 0.1 did, for the deprecation period:

- class priors are passed when the loss builder has a ``class_priors`` parameter;
- sample weights work when the built loss has a ``reduction`` attribute
  (refused by name otherwise);
- under a label-mixing augmentation the built loss is probed once before
  training: it must give the same value for one-hot targets as for the
  labels, else it is refused by name (never trained on targets it misreads);
- an augmentation mixes labels when the built object has ``mixes_labels = True``;
- a sampler acts on the training split when the built object has
  ``fit_resample``, else per epoch.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from ..plugin.registry import ComponentChain, Registry
from ..plugin.specs import SAMPLER_STAGES, LossSpec
from .multilabel import DEFAULT_MULTILABEL_LOSS, label_priors
from .net import per_sample_criterion
from .params import check_augment
from .preset_data import AUGMENT_PRESETS

__all__ = ["augmentation_chain", "build_criterion", "check_label_mixing", "check_sample_weight_support", "resolve_sampler",
           "training_loss"]


def _plugin(spec: Any) -> str:
    return f"plugin {spec.plugin!r}" if spec.plugin else "no plugin"


def _losses_with(registry: Registry, field: str, multilabel: bool = False) -> str:
    """The losses declaring ``field``, of the same kind (multi-label or multi-class) as ``multilabel`` says."""
    names = [name for name, spec in registry.specs("loss").items()
             if getattr(spec, field) and (field == "multilabel" or getattr(spec, "multilabel", False) == multilabel)]
    return ", ".join(names) or "none installed"


def _mixers(augment: ComponentChain | None) -> list[str]:
    if augment is None:
        return []
    return [spec.name for spec, mixes in zip(augment.specs(), augment.mixes_labels()) if mixes]


def _refuse_mixing(registry: Registry, loss: str, spec: LossSpec, mixers: list[str], reason: str) -> ValueError:
    listed = " and ".join(repr(m) for m in mixers)
    return ValueError(
        f"The loss {loss!r} ({_plugin(spec)}) {reason}, but augment includes {listed}, which "
        f"mix{'es' if len(mixers) == 1 else ''} labels into (n_samples, n_classes) soft targets. Use a loss "
        f"that declares soft_targets ({_losses_with(registry, 'soft_targets', spec.multilabel)}), or remove {listed} from augment."
    )


def check_label_mixing(registry: Registry, loss: str, augment: ComponentChain | None) -> None:
    """Refuse a loss that does not declare ``soft_targets`` under a label-mixing augmentation.

    Raises
    ------
    ValueError
        Naming the loss, the label-mixing augmentations and both fixes.
    """
    mixers = _mixers(augment)
    spec = registry.get("loss", loss)
    if mixers and not spec.soft_targets and not registry.from_deprecated_hook("loss", loss):
        raise _refuse_mixing(registry, loss, spec, mixers, "does not declare soft_targets=True")


def check_sample_weight_support(registry: Registry, loss: str) -> None:
    """Refuse ``fit(sample_weight=...)`` with a loss that does not declare ``sample_weights``.

    Raises
    ------
    ValueError
        Naming the loss and the losses that can weight samples.
    """
    spec = registry.get("loss", loss)
    if not spec.sample_weights and not registry.from_deprecated_hook("loss", loss):
        raise ValueError(
            f"sample_weight needs a loss that can weight samples, and the loss {loss!r} ({_plugin(spec)}) "
            f"does not declare sample_weights=True. Fit without sample_weight, or use one of: "
            f"{_losses_with(registry, 'sample_weights', spec.multilabel)}."
        )


def training_loss(registry: Registry, loss: str, multilabel: bool) -> str:
    """The loss a fit trains with: ``loss``, or for multi-label ``y`` left at ``"cross_entropy"``, ``binary_cross_entropy``.

    Raises
    ------
    ValueError
        For a multi-class loss with multi-label ``y`` (naming the losses that
        declare ``multilabel=True``), or a multi-label loss with one label per
        image.
    """
    spec = registry.get("loss", loss)
    if multilabel and loss == "cross_entropy":
        return DEFAULT_MULTILABEL_LOSS
    if multilabel and not spec.multilabel:
        raise ValueError(
            f"y is multi-label (an indicator matrix or label collections), but the loss {loss!r} ({_plugin(spec)}) "
            f"is a multi-class loss (softmax over classes). Use a multi-label loss: "
            f"{_losses_with(registry, 'multilabel')} (loss='cross_entropy', the default, picks "
            f"{DEFAULT_MULTILABEL_LOSS!r})."
        )
    if not multilabel and spec.multilabel:
        raise ValueError(
            f"The loss {loss!r} ({_plugin(spec)}) is a multi-label loss, but y gives one label per image. Pass y as "
            "an (n_samples, n_labels) 0/1 indicator matrix or as label collections (e.g. [['cat'], ['cat', 'dog']]), "
            "or use a multi-class loss such as 'cross_entropy'."
        )
    return loss


def _takes_soft_targets(criterion: torch.nn.Module, n_classes: int) -> bool:
    """Whether ``criterion`` gives one-hot targets the value it gives their labels (a deprecated-hook loss)."""
    logits = torch.randn(6, n_classes, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(6) % n_classes
    try:
        with torch.no_grad():
            hard = criterion(logits, labels)
            soft = criterion(logits, torch.nn.functional.one_hot(labels, n_classes).float())
        return bool(torch.allclose(torch.as_tensor(hard), torch.as_tensor(soft), rtol=1e-4, atol=1e-6))
    except Exception:  # any failure of foreign code on probability targets means "not supported"
        return False


def build_criterion(
    registry: Registry,
    loss: str,
    class_weight: torch.Tensor | None,
    loss_params: dict,
    y_encoded: np.ndarray,
    *,
    weighted: bool = False,
    augment: ComponentChain | None = None,
) -> torch.nn.Module:
    """Build the loss ``loss`` for training on labels ``y_encoded``, as its spec declares.

    Parameters
    ----------
    registry : Registry
        Where ``loss`` is registered.
    loss : str
        The loss name.
    class_weight : torch.Tensor or None
        One weight per class (multi-label: the weight of each label's positives).
    loss_params : dict
        The user's build parameters (a ``class_priors`` entry overrides the
        training frequencies).
    y_encoded : numpy.ndarray
        Encoded training labels: their class frequencies are the priors
        (multi-label, a 2-D 0/1 matrix: each label's share of positives).
    weighted : bool
        Whether the fit is sample-weighted (the loss then returns one value
        per sample).
    augment : ComponentChain or None
        The training augmentations (a deprecated-hook loss is probed for soft
        targets when one of them mixes labels).

    Returns
    -------
    torch.nn.Module
    """
    spec = registry.get("loss", loss)
    legacy = registry.from_deprecated_hook("loss", loss)
    parameters = inspect.signature(spec.build).parameters
    wants_priors = spec.needs_class_priors or (legacy and "class_priors" in parameters)
    required = "class_priors" in parameters and parameters["class_priors"].default is inspect.Parameter.empty
    if required and not wants_priors and "class_priors" not in loss_params:
        raise TypeError(
            f"The loss {loss!r} ({_plugin(spec)}) requires class_priors but its LossSpec does not declare "
            f"needs_class_priors=True; declare it in the plugin, or pass loss_params={{'class_priors': ...}}."
        )
    extra = {}
    if wants_priors and "class_priors" not in loss_params:
        extra["class_priors"] = (label_priors(y_encoded) if np.ndim(y_encoded) == 2  # each label's share of positives
                                 else torch.as_tensor(np.bincount(y_encoded) / len(y_encoded), dtype=torch.float32))
    params = {**extra, **loss_params}
    criterion = registry.build("loss", loss, class_weight=class_weight, **params)
    mixers = _mixers(augment)
    if legacy and mixers and not spec.soft_targets:
        n_classes = int(np.max(y_encoded)) + 1
        if not _takes_soft_targets(registry.build("loss", loss, class_weight=None, **params), n_classes):
            raise _refuse_mixing(registry, loss, spec, mixers,
                                 "declares no soft_targets (a plugin on the deprecated hooks) and misreads them")
    if weighted:
        criterion = per_sample_criterion(criterion, loss, declared=spec.sample_weights)
    return criterion


def resolve_sampler(registry: Registry, item: tuple[str, dict]) -> tuple[ComponentChain | None, Any]:
    """``(per-epoch sampler chain, None)`` or ``(None, resampler)`` for the sampler ``item``, by its ``stage``.

    Raises
    ------
    ValueError
        For a stage other than ``"epoch"`` or ``"training_split"``.
    TypeError
        When the built object is not what the declared stage promises.
    """
    name, params = item
    spec = registry.get("sampler", name)
    built = registry.build("sampler", name, **params)
    resamples = callable(getattr(built, "fit_resample", None))
    stage = spec.stage
    if registry.from_deprecated_hook("sampler", name):
        stage = "training_split" if resamples else "epoch"
    if stage not in SAMPLER_STAGES:
        raise ValueError(
            f"The sampler {name!r} ({_plugin(spec)}) declares stage={spec.stage!r}; a SamplerSpec's stage must be "
            f"one of {', '.join(map(repr, SAMPLER_STAGES))}. Fix the plugin's spec, or use another sampler: "
            f"{', '.join(registry.names('sampler'))}."
        )
    if stage == "training_split":
        if not resamples:
            raise TypeError(
                f"The sampler {name!r} ({_plugin(spec)}) declares stage='training_split' but builds a "
                f"{type(built).__name__} without fit_resample(X, y); fix the plugin's build or its stage."
            )
        return None, built
    if not callable(built):
        hint = " It has fit_resample: declare stage='training_split'." if resamples else ""
        raise TypeError(
            f"The sampler {name!r} ({_plugin(spec)}) declares stage='epoch' but builds a {type(built).__name__}, "
            f"which is not a sample(y, generator) callable.{hint}"
        )
    return ComponentChain("sampler", [item]).build(), None


def augmentation_chain(augment: Any) -> ComponentChain:
    """The built augmentations of an ``augment`` value: None, a preset name, a component name or a list.

    Used by the estimators' ``fit`` and by :func:`sklearn_imgcls.plot.plot_augmentations`, so a
    figure shows exactly what training applies.
    """
    return ComponentChain("augmentation", check_augment(augment, AUGMENT_PRESETS)).build()
