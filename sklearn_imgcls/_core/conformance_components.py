"""Conformance checks for spec fields, losses, augmentations and samplers (see :mod:`sklearn_imgcls.testing`).

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
    "SAMPLER_CHECKS",
    "SPEC_CHECKS",
    "check_augmentation_batch",
    "check_augmentation_declares_mixing",
    "check_augmentation_seeded",
    "check_loss_class_priors",
    "check_loss_integer_targets",
    "check_loss_pickles",
    "check_loss_sample_weights",
    "check_loss_soft_targets",
    "check_sampler_epoch",
    "check_sampler_seeded",
    "check_sampler_training_split",
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
    flags = {LossSpec: ("soft_targets", "needs_class_priors", "sample_weights"), AugmentationSpec: ("mixes_labels",)}
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


@conformance_check("loss")
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


@conformance_check("loss", applies=lambda spec: getattr(spec, "soft_targets", False))
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
    mean = _value(ctx, loss, logits, _int_targets(), "int64 class indices")
    ctx.require(hasattr(loss, "reduction"), "declares sample_weights but the built module has no `reduction`",
                "add a reduction attribute honouring 'none', or declare sample_weights=False")
    loss.reduction = "none"
    checks = [(_int_targets(), "int64 class indices")]
    if ctx.spec.soft_targets:
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
    expected = _value(ctx, loss, logits, _int_targets(), "int64 class indices")
    for how, clone in (("pickle", lambda m: pickle.loads(pickle.dumps(m))), ("copy.deepcopy", copy.deepcopy)):
        copied = ctx.call(f"{how} of the built loss", clone, loss,
                          fix="keep lambdas and local functions out of the module; use module-level code")
        ctx.require(torch.allclose(copied(logits, _int_targets()), expected),
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


# -- samplers ---------------------------------------------------------------------------------------

def _labels():
    import torch

    return torch.tensor([0] * 20 + [1] * 12 + [2] * 8, dtype=torch.int64)


def _build_sampler(ctx: CheckContext):
    return ctx.call("build()", ctx.spec.build, fix="build(**params) must work with the default params")


@conformance_check("sampler", applies=lambda spec: getattr(spec, "stage", "epoch") == "epoch")
def check_sampler_epoch(ctx: CheckContext) -> None:
    """stage="epoch": ``sample(y, generator)`` returns a non-empty 1-D int64 tensor of indices into y."""
    import torch

    sample = _build_sampler(ctx)
    ctx.require(callable(sample) or not hasattr(sample, "fit_resample"),
                "build() returned an object with fit_resample, but the spec declares stage='epoch'",
                "declare SamplerSpec(..., stage='training_split')")
    ctx.require(callable(sample), f"build() returned {type(sample).__name__}, not a callable",
                "return sample(y, generator), or declare stage='training_split' for a fit_resample object")
    y = _labels()
    idx = ctx.call("sample(y, generator)", sample, y, seeded_generator(0))
    ctx.require(isinstance(idx, torch.Tensor) and idx.ndim == 1 and idx.dtype == torch.int64,
                f"sample(y, generator) returned {type(idx).__name__} {getattr(idx, 'dtype', '')} "
                f"{tuple(getattr(idx, 'shape', ()))}", "return a 1-D torch.int64 tensor of indices")
    ctx.require(len(idx) > 0 and int(idx.min()) >= 0 and int(idx.max()) < len(y),
                f"sample(y, generator) returned indices outside [0, {len(y)}) (or none)",
                "return positions into y, e.g. from torch.nonzero(y == c)")


@conformance_check("sampler", applies=lambda spec: getattr(spec, "stage", "epoch") == "epoch")
def check_sampler_seeded(ctx: CheckContext) -> None:
    """stage="epoch": generators with the same seed give the same indices, whatever torch's global seed."""
    import torch

    results = []
    for global_seed in (11, 12):
        sample = _build_sampler(ctx)
        torch.manual_seed(global_seed)
        results.append(ctx.call("sample(y, generator)", sample, _labels(), seeded_generator(42)))
    ctx.require(torch.equal(results[0], results[1]),
                "the same generator seed gave different indices (it draws from torch's global random state?)",
                "draw every random number from the generator argument")


@conformance_check("sampler", applies=lambda spec: getattr(spec, "stage", "epoch") == "training_split")
def check_sampler_training_split(ctx: CheckContext) -> None:
    """stage="training_split": ``fit_resample(X, y)`` returns matching rows and known labels, repeatably."""
    import numpy as np

    sampler = _build_sampler(ctx)
    ctx.require(callable(getattr(sampler, "fit_resample", None)),
                f"build() returned {type(sampler).__name__} without fit_resample(X, y)",
                "return an imbalanced-learn style object, or declare stage='epoch' for sample(y, generator)")
    y = _labels().numpy()
    X = np.random.default_rng(0).random((len(y), 12)).astype(np.float32)
    results = []
    for _ in range(2):
        if hasattr(sampler, "get_params") and "random_state" in sampler.get_params():
            sampler.set_params(random_state=0)  # the estimator passes its own seed the same way
        results.append(ctx.call("fit_resample(X, y)", sampler.fit_resample, X, y))
    X_new, y_new = (np.asarray(a) for a in results[0])
    ctx.require(X_new.ndim == 2 and X_new.shape[1] == X.shape[1] and len(X_new) == len(y_new) > 0,
                f"fit_resample returned X {X_new.shape} and y {y_new.shape} for X {X.shape}",
                "return (X_resampled, y_resampled) with the same columns and one label per row")
    ctx.require(set(np.unique(y_new)) <= set(np.unique(y)), "fit_resample returned labels not in y",
                "only resample the classes it is given")
    ctx.require(all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(results[0], results[1])),
                "two fit_resample runs with random_state=0 differ",
                "expose random_state in get_params/set_params and use it")


SPEC_CHECKS = (check_spec_fields,)
LOSS_CHECKS = (check_loss_integer_targets, check_loss_soft_targets, check_loss_sample_weights,
               check_loss_class_priors, check_loss_pickles)
AUGMENTATION_CHECKS = (check_augmentation_batch, check_augmentation_seeded, check_augmentation_declares_mixing)
SAMPLER_CHECKS = (check_sampler_epoch, check_sampler_seeded, check_sampler_training_split)
