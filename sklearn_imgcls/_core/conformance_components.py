"""Conformance checks for spec fields, losses and augmentations (see :mod:`sklearn_imgcls.testing`).

The checks use tiny CPU tensors (6 samples, 4 classes; 4 images of 12x16
pixels) and hold each component to what its spec declares in
:mod:`sklearn_imgcls.plugin.specs`.
"""

from __future__ import annotations

import copy
import inspect
import pickle
from typing import Any

from ..plugin.specs import (
    SAMPLER_STAGES, AugmentationSpec, BackboneSpec, LossSpec, SamplerSpec,
)
from .conformance import CheckContext, conformance_check, require_common_fields, seeded_generator

__all__ = [
    "AUGMENTATION_CHECKS",
    "LOSS_CHECKS",
    "SPEC_CHECKS",
    "check_augmentation_batch",
    "check_augmentation_declares_mixing",
    "check_augmentation_seeded",
    "check_loss_class_priors",
    "check_loss_integer_targets",
    "check_loss_multilabel_targets",
    "check_loss_pickles",
    "check_loss_sample_weights",
    "check_loss_soft_targets",
    "check_spec_fields",
]

CLASSES = 4
TARGETS = (0, 1, 2, 3, 1, 2)


@conformance_check("component")
def check_spec_fields(ctx: CheckContext) -> None:
    """The spec's fields have the declared types (name, build, description, tags and the kind's own fields)."""
    spec = ctx.spec
    ctx.require(isinstance(spec, (BackboneSpec, LossSpec, AugmentationSpec, SamplerSpec)), f"{spec!r} is a {type(spec).__name__}, not one of the component specs",
                "return BackboneSpec, LossSpec, AugmentationSpec or SamplerSpec instances from the hooks")
    require_common_fields(ctx, "my_resnet", "pass the factory function or class",
                          "listings and `sklearn-imgcls plugins` show it", "pass tags=('small',) rather than a list or string")
    flags = {LossSpec: ("soft_targets", "needs_class_priors", "sample_weights", "multilabel"), AugmentationSpec: ("mixes_labels",)}
    for flag in flags.get(type(spec), ()):
        ctx.require(isinstance(getattr(spec, flag), bool), f"{flag}={getattr(spec, flag)!r} is not a bool",
                    f"declare {flag}=True or False")
    if isinstance(spec, SamplerSpec):
        ctx.require(spec.stage in SAMPLER_STAGES, f"stage={spec.stage!r}", f"declare stage as one of {SAMPLER_STAGES}")
    if isinstance(spec, BackboneSpec):
        for name in ("classifier", "first_conv", "target_layer"):
            value = getattr(spec, name)
            ctx.require(value is None or (isinstance(value, str) and value),
                        f"{name}={value!r} is not a dotted module name", f"declare {name} as e.g. 'head.fc', or None")
        ctx.require(spec.build_native is None or callable(spec.build_native),
                    f"build_native={spec.build_native!r} is not callable", "pass a function of num_classes, or None")
        ctx.require(isinstance(spec.weights, tuple), f"weights={spec.weights!r} is not a tuple",
                    "declare weights=(PretrainedWeights(...), ...)")
        size = spec.input_size
        ctx.require(size is None or (isinstance(size, tuple) and len(size) == 2 and all(
            isinstance(v, int) and v > 0 for v in size)), f"input_size={size!r}", "declare (H, W) as two positive ints")


# -- losses -----------------------------------------------------------------------------------------

def _priors():
    import torch

    return torch.tensor([0.4, 0.3, 0.2, 0.1])


def _build_loss(ctx: CheckContext, class_weight: Any = None, class_priors: Any = None):
    from torch import nn

    spec: LossSpec = ctx.spec
    kwargs = {"class_weight": class_weight}
    if spec.needs_class_priors:
        kwargs["class_priors"] = _priors() if class_priors is None else class_priors
    hint = "build(class_weight=None, **params) must work with the default params"
    if not spec.needs_class_priors and "class_priors" in inspect.signature(spec.build).parameters:
        hint += "; a loss that needs the class frequencies must declare LossSpec(..., needs_class_priors=True)"
    loss = ctx.call(f"build({', '.join(f'{k}=...' for k in kwargs)})", spec.build, fix=hint, **kwargs)
    ctx.require(isinstance(loss, nn.Module), f"build returned {type(loss).__name__}, not an nn.Module",
                "return a torch.nn.Module (skorch moves the criterion between devices)")
    return loss


def _logits():
    import torch

    return torch.randn(len(TARGETS), CLASSES, generator=seeded_generator(3)).requires_grad_(True)


def _int_targets():
    import torch

    return torch.tensor(TARGETS, dtype=torch.int64)


def _one_hot():
    import torch

    return torch.nn.functional.one_hot(_int_targets(), CLASSES).float()


def _value(ctx: CheckContext, loss: Any, logits: Any, targets: Any, what: str, fix: str = ""):
    import torch

    out = ctx.call(f"the loss on {what}", loss, logits, targets, fix=fix)
    ctx.require(isinstance(out, torch.Tensor) and out.ndim == 0 and out.is_floating_point(),
                f"the loss on {what} returned {getattr(out, 'shape', type(out).__name__)}; expected a float scalar",
                "reduce to a scalar (mean) unless reduction='none' is set")
    ctx.require(bool(torch.isfinite(out)), f"the loss on {what} is {out.detach()}", "keep the loss finite")
    return out


def _grad_ok(ctx: CheckContext, out: Any, logits: Any, what: str) -> None:
    import torch

    ctx.call(f"backward of the loss on {what}", out.backward, fix="keep the loss differentiable in the logits")
    ctx.require(logits.grad is not None and bool(torch.isfinite(logits.grad).all()) and bool(logits.grad.abs().sum()),
                f"the loss on {what} gives no finite, non-zero gradient for the logits",
                "compute the loss from the logits without detaching them")


def _single_label(spec: Any) -> bool:
    return not getattr(spec, "multilabel", False)


def _targets(spec: Any):
    """The hard targets a loss trains on: class indices, or a 0/1 matrix for a multi-label loss."""
    return _multi_hot() if getattr(spec, "multilabel", False) else _int_targets()


def _multi_hot():
    import torch

    return (torch.rand(len(TARGETS), CLASSES, generator=seeded_generator(5)) < 0.5).float()


@conformance_check("loss", applies=_single_label)
def check_loss_integer_targets(ctx: CheckContext) -> None:
    """Integer targets give a finite scalar and gradients; class_weight of ones changes nothing."""
    import torch

    loss = _build_loss(ctx)
    logits = _logits()
    out = _value(ctx, loss, logits, _int_targets(), "int64 class indices")
    _grad_ok(ctx, out, logits, "int64 class indices")
    weighted = _build_loss(ctx, class_weight=torch.ones(CLASSES))
    same = _value(ctx, weighted, logits.detach(), _int_targets(), "int64 targets with class_weight=ones")
    ctx.require(torch.allclose(same, out.detach(), rtol=1e-5, atol=1e-6),
                f"class_weight=ones gives {float(same):.6g}, without class_weight {float(out.detach()):.6g}",
                "apply class_weight as per-class weights of a weighted mean (as nn.CrossEntropyLoss does)")


@conformance_check("loss", applies=lambda spec: getattr(spec, "multilabel", False))
def check_loss_multilabel_targets(ctx: CheckContext) -> None:
    """Declared multilabel: (N, k) 0/1 float targets give a finite scalar and gradients; class_weight of ones
    (each label's positive weight) changes nothing."""
    import torch

    loss = _build_loss(ctx)
    logits = _logits()
    fix = "accept (N, num_labels) float 0/1 targets (one sigmoid per label), or declare multilabel=False"
    out = _value(ctx, loss, logits, _multi_hot(), "a 0/1 label matrix", fix)
    _grad_ok(ctx, out, logits, "a 0/1 label matrix")
    weighted = _build_loss(ctx, class_weight=torch.ones(CLASSES))
    same = _value(ctx, weighted, logits.detach(), _multi_hot(), "a 0/1 label matrix with class_weight=ones", fix)
    ctx.require(torch.allclose(same, out.detach(), rtol=1e-5, atol=1e-6),
                f"class_weight=ones gives {float(same):.6g}, without class_weight {float(out.detach()):.6g}",
                "apply class_weight as each label's positive weight (as BCEWithLogitsLoss's pos_weight does)")


@conformance_check("loss", applies=lambda spec: getattr(spec, "soft_targets", False) and _single_label(spec))
def check_loss_soft_targets(ctx: CheckContext) -> None:
    """Declared soft_targets: one-hot targets equal integer targets; mixed ones are used, not argmaxed."""
    import torch

    loss = _build_loss(ctx)
    logits = _logits()
    fix = "accept (N, num_classes) float probability targets in forward, or declare soft_targets=False"
    hard = _value(ctx, loss, logits.detach(), _int_targets(), "int64 class indices")
    one_hot = _value(ctx, loss, logits.detach(), _one_hot(), "one-hot float targets", fix)
    ctx.require(torch.allclose(one_hot, hard, rtol=1e-5, atol=1e-6),
                f"one-hot targets give {float(one_hot):.6g} but the same labels as indices give {float(hard):.6g}",
                "treat a (N, num_classes) target row as the class probabilities")
    partner = torch.roll(_int_targets(), 1)
    mixed = 0.7 * _one_hot() + 0.3 * torch.nn.functional.one_hot(partner, CLASSES).float()
    out = _value(ctx, loss, logits, mixed, "mixed (0.7/0.3) probability targets", fix)
    _grad_ok(ctx, out, logits, "mixed probability targets")
    ctx.require(not torch.allclose(out.detach(), hard, rtol=1e-5, atol=1e-6),
                "mixed probability targets give the loss of their arg-max labels: the mixing is ignored",
                "use the whole probability row, as mixup and cutmix expect")


@conformance_check("loss", applies=lambda spec: getattr(spec, "sample_weights", False))
def check_loss_sample_weights(ctx: CheckContext) -> None:
    """Declared sample_weights: ``reduction = "none"`` gives one value per sample, whose mean is the loss."""
    import torch

    loss = _build_loss(ctx)
    logits = _logits().detach()
    hard = "0/1 label matrix" if ctx.spec.multilabel else "int64 class indices"
    mean = _value(ctx, loss, logits, _targets(ctx.spec), hard)
    ctx.require(hasattr(loss, "reduction"), "declares sample_weights but the built module has no `reduction`",
                "add a reduction attribute honouring 'none', or declare sample_weights=False")
    loss.reduction = "none"
    checks = [(_targets(ctx.spec), hard)]
    if ctx.spec.soft_targets and not ctx.spec.multilabel:
        checks.append((_one_hot(), "one-hot float targets"))
    for targets, what in checks:
        out = ctx.call(f"the loss with reduction='none' on {what}", loss, logits, targets)
        ctx.require(isinstance(out, torch.Tensor) and tuple(out.shape) == (len(TARGETS),),
                    f"reduction='none' on {what} returned {getattr(out, 'shape', type(out).__name__)}; expected "
                    f"one loss per sample, shape ({len(TARGETS)},)", "return the unreduced per-sample losses")
        ctx.require(torch.allclose(out.mean(), mean, rtol=1e-5, atol=1e-6),
                    f"the per-sample losses average to {float(out.mean()):.6g}, the reduced loss is {float(mean):.6g}",
                    "make reduction='mean' the mean of the per-sample losses")


@conformance_check("loss", applies=lambda spec: getattr(spec, "needs_class_priors", False))
def check_loss_class_priors(ctx: CheckContext) -> None:
    """Declared needs_class_priors: build takes class_priors, and the priors change the loss."""
    import torch

    ctx.require("class_priors" in inspect.signature(ctx.spec.build).parameters or any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(ctx.spec.build).parameters.values()),
        "declares needs_class_priors but build has no class_priors parameter",
        "add a class_priors parameter to build (a float tensor of class frequencies summing to 1)")
    logits = _logits().detach()
    skewed = _value(ctx, _build_loss(ctx), logits, _int_targets(), "int64 targets with skewed priors")
    uniform = _build_loss(ctx, class_priors=torch.full((CLASSES,), 1.0 / CLASSES))
    flat = _value(ctx, uniform, logits, _int_targets(), "int64 targets with uniform priors")
    ctx.require(not torch.allclose(skewed, flat), "the loss is the same for uniform and skewed class priors",
                "use class_priors in the loss, or declare needs_class_priors=False")


@conformance_check("loss")
def check_loss_pickles(ctx: CheckContext) -> None:
    """The built loss survives pickle and deepcopy with the same value (fitted estimators pickle it)."""
    import torch

    loss = _build_loss(ctx)
    logits = _logits().detach()
    targets = _targets(ctx.spec)
    expected = _value(ctx, loss, logits, targets, "0/1 label matrix" if ctx.spec.multilabel else "int64 class indices")
    for how, clone in (("pickle", lambda m: pickle.loads(pickle.dumps(m))), ("copy.deepcopy", copy.deepcopy)):
        copied = ctx.call(f"{how} of the built loss", clone, loss,
                          fix="keep lambdas and local functions out of the module; use module-level code")
        ctx.require(torch.allclose(copied(logits, targets), expected),
                    f"the loss gives another value after {how}", "keep all state in attributes or buffers")


# -- augmentations ----------------------------------------------------------------------------------

def _images(channels: int):
    import torch

    return torch.rand(4, channels, 12, 16, generator=seeded_generator(5))


def _augment(ctx: CheckContext, augment: Any, images: Any, seed: int):
    """Call the augmentation as its spec declares; return ``(images, targets or None)``."""
    import torch

    what = f"the augmentation on a float {tuple(images.shape)} batch"
    if not ctx.spec.mixes_labels:
        out = ctx.call(f"{what}, called as augment(images, generator)", augment, images, seeded_generator(seed),
                       fix="take (images, generator), or declare mixes_labels=True if it also mixes the labels")
        ctx.require(isinstance(out, torch.Tensor), f"{what} returned {type(out).__name__}, not a tensor",
                    "return the augmented batch only, or declare mixes_labels=True and return (images, targets)")
        return out, None
    targets = torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float()
    out = ctx.call(f"{what}, called as augment(images, targets, generator)", augment, images, targets,
                   seeded_generator(seed), fix="mixes_labels=True means augment(images, one_hot_targets, generator)")
    ctx.require(isinstance(out, tuple) and len(out) == 2, f"{what} returned {type(out).__name__}",
                "with mixes_labels=True return (images, mixed_targets)")
    mixed = out[1]
    ctx.require(isinstance(mixed, torch.Tensor) and mixed.shape == targets.shape and mixed.is_floating_point(),
                f"{what} returned targets of shape {getattr(mixed, 'shape', None)}; expected {tuple(targets.shape)}",
                "return (N, num_classes) float targets")
    ctx.require(bool((mixed >= -1e-6).all()) and torch.allclose(mixed.sum(1), torch.ones(4), atol=1e-5),
                f"{what} returned targets that are not probabilities (rows sum to {mixed.sum(1).tolist()})",
                "mix the targets with weights that sum to 1")
    return out[0], mixed


@conformance_check("augmentation")
def check_augmentation_batch(ctx: CheckContext) -> None:
    """1- and 3-channel float batches keep shape, dtype and finiteness; the input is not changed in place."""
    import torch

    augment = ctx.call("build()", ctx.spec.build, fix="build(**params) must work with the default params")
    ctx.require(callable(augment), f"build() returned {type(augment).__name__}, not a callable",
                "return augment(images, generator)")
    for channels in (1, 3):
        images = _images(channels)
        original = images.clone()
        out, _ = _augment(ctx, augment, images, seed=0)
        ctx.require(out.shape == original.shape and out.dtype == original.dtype,
                    f"a {tuple(original.shape)} {original.dtype} batch came back as {tuple(out.shape)} {out.dtype}",
                    "keep the batch's shape and dtype")
        ctx.require(bool(torch.isfinite(out).all()), "the augmented batch holds NaN or infinite values",
                    "keep pixel values finite")
        ctx.require(torch.equal(images, original), "the augmentation changed its input batch in place",
                    "work on a copy (images.clone()) or out-of-place operations; the batch may be the stored data")


@conformance_check("augmentation")
def check_augmentation_seeded(ctx: CheckContext) -> None:
    """Two builds fed generators with the same seed give the same batch, whatever torch's global seed."""
    import torch

    outputs = []
    for global_seed in (11, 12):
        augment = ctx.call("build()", ctx.spec.build)
        torch.manual_seed(global_seed)
        outputs.append(_augment(ctx, augment, _images(3), seed=42))
    (first, first_targets), (second, second_targets) = outputs
    ctx.require(torch.equal(first, second) and (first_targets is None or torch.equal(first_targets, second_targets)),
                "the same generator seed gave different batches (it draws from torch's global random state?)",
                "draw every random number from the generator argument (torch.rand(..., generator=generator))")


@conformance_check("augmentation")
def check_augmentation_declares_mixing(ctx: CheckContext) -> None:
    """What the built object says about label mixing matches ``AugmentationSpec.mixes_labels``."""
    augment = ctx.call("build()", ctx.spec.build)
    attribute = getattr(augment, "mixes_labels", None)
    ctx.require(attribute is None or bool(attribute) == ctx.spec.mixes_labels,
                f"the built object says mixes_labels={attribute!r} but the spec declares "
                f"mixes_labels={ctx.spec.mixes_labels!r}; the core reads only the spec",
                f"declare AugmentationSpec(..., mixes_labels={bool(attribute)!r})")


SPEC_CHECKS = (check_spec_fields,)
LOSS_CHECKS = (check_loss_integer_targets, check_loss_multilabel_targets, check_loss_soft_targets, check_loss_sample_weights,
               check_loss_class_priors, check_loss_pickles)
AUGMENTATION_CHECKS = (check_augmentation_batch, check_augmentation_seeded, check_augmentation_declares_mixing)
