"""Conformance checks for backbone specs (see :mod:`sklearn_imgcls.testing`).

Each check builds the network small (a batch of 2 images, 8x8 and 12x20
pixels by default, 5 classes), on the CPU, and holds it to what
:class:`~sklearn_imgcls.plugin.specs.BackboneSpec` promises.
"""

from __future__ import annotations

import copy
import functools
import pickle
from typing import Any

from ..plugin.specs import BackboneSpec, PretrainedWeights
from .conformance import CheckContext, conformance_check, describe_exception
from .layers import INNER_ATTRIBUTE, resolve_layer

__all__ = [
    "BACKBONE_CHECKS",
    "check_backbone_backward",
    "check_backbone_declared_layers",
    "check_backbone_native",
    "check_backbone_output",
    "check_backbone_pickles",
    "check_backbone_seeded",
    "check_backbone_weights",
]

#: classes the test networks predict (not 3, so channels and classes cannot be confused)
NUM_CLASSES = 5
BATCH = 2
BUILD_FIX = "build(in_channels, num_classes, image_size, **params) must return an nn.Module for any of these"
LAYER_FIELDS = ("classifier", "first_conv", "target_layer")


def _build(ctx: CheckContext, in_channels: int, image_size: tuple[int, int], seed: int = 0, fresh: bool = False):
    """Build the spec's network after ``torch.manual_seed(seed)``.

    Unless ``fresh``, the last two networks built are reused across checks
    (a 138M-parameter VGG takes a second to build); checks that reuse one
    set its train/eval mode and leave no hooks or gradients behind.
    """
    from torch import nn

    args = (in_channels, NUM_CLASSES, tuple(image_size))
    try:
        hash(ctx.spec)
    except TypeError:  # a spec with an unhashable field (its check_spec_fields reports it) is built each time
        fresh = True
    build = _fresh_build if fresh else _cached_build
    model = ctx.call(f"build{args}", build, ctx.spec, args, seed, fix=BUILD_FIX)
    ctx.require(
        isinstance(model, nn.Module), f"build{args} returned {type(model).__name__}, not a torch.nn.Module",
        "return the network (an nn.Module) from build",
    )
    model.zero_grad(set_to_none=True)
    return model


def _fresh_build(spec: BackboneSpec, args: tuple, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return spec.build(*args)


_cached_build = functools.lru_cache(maxsize=2)(_fresh_build)


def _inputs(in_channels: int, image_size: tuple[int, int], batch: int = BATCH):
    import torch

    return torch.rand(batch, in_channels, *image_size, generator=torch.Generator().manual_seed(1))


def _configs(ctx: CheckContext) -> list[tuple[int, tuple[int, int]]]:
    sizes = [tuple(s) for s in ctx.options.image_sizes]
    return [(1 if i == 0 else 3, size) for i, size in enumerate(sizes)]


def _check_logits(ctx: CheckContext, out: Any, what: str, batch: int = BATCH, classes: int = NUM_CLASSES) -> None:
    import torch

    ctx.require(
        isinstance(out, torch.Tensor), f"{what} returned {type(out).__name__}, not a tensor of logits",
        "forward must return the (N, num_classes) logits tensor (no tuple, dict or auxiliary outputs)",
    )
    ctx.require(
        tuple(out.shape) == (batch, classes),
        f"{what} returned shape {tuple(out.shape)}; expected (N, num_classes) = {(batch, classes)}",
        "size the classification head to num_classes and flatten/pool before it",
    )
    ctx.require(out.is_floating_point(), f"{what} returned dtype {out.dtype}", "return float logits")
    ctx.require(bool(torch.isfinite(out).all()), f"{what} returned NaN or infinite logits", "check the forward pass")


@conformance_check("backbone")
def check_backbone_output(ctx: CheckContext) -> None:
    """Builds for 1 and 3 channels at a small and a non-square size; forward gives finite (N, classes) floats."""
    import torch

    for in_channels, size in _configs(ctx):
        model = _build(ctx, in_channels, size)
        x = _inputs(in_channels, size)
        for mode in ("train", "eval"):
            model.train(mode == "train")
            what = f"forward of build{(in_channels, NUM_CLASSES, size)} on a {tuple(x.shape)} batch ({mode} mode)"
            with torch.no_grad():
                out = ctx.call(what, model, x, fix=f"{BUILD_FIX}; the network must take in_channels input channels and adapt to the image size")
            _check_logits(ctx, out, what)


@conformance_check("backbone")
def check_backbone_backward(ctx: CheckContext) -> None:
    """A cross-entropy loss on the logits back-propagates finite gradients into the parameters."""
    import torch

    in_channels, size = _configs(ctx)[-1]
    model = _build(ctx, in_channels, size).train()
    params = [p for p in model.parameters() if p.requires_grad]
    ctx.require(params, "the module has no trainable parameters", "register the layers as nn.Module attributes")
    out = ctx.call("forward", model, _inputs(in_channels, size))
    loss = torch.nn.functional.cross_entropy(out, torch.arange(BATCH) % NUM_CLASSES)
    ctx.call("backward", loss.backward, fix="do not detach the logits or run the forward under torch.no_grad()")
    grads = [p.grad for p in params if p.grad is not None]
    ctx.require(grads, "no parameter received a gradient", "do not detach the logits or freeze every parameter")
    ctx.require(all(bool(torch.isfinite(g).all()) for g in grads), "some gradients are NaN or infinite",
                "check the forward pass for unstable operations")


def _record(seen: dict, key: str, module: Any, args: Any, output: Any) -> None:
    """Forward hook: remember the first call's inputs and output (returns None: the output is kept)."""
    seen.setdefault(key, (args, output))


def _suggest(model: Any, field_name: str) -> str:
    """A name to declare for ``field_name``, from the layers a forward pass runs (a hint for the message)."""
    import torch
    from torch import nn

    ran: list[tuple[str, Any, Any]] = []
    handles = [m.register_forward_hook(functools.partial(_ran, ran, n)) for n, m in model.named_modules() if n]
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = first.in_channels if first is not None else 3
    try:
        with torch.no_grad():
            model.eval()(_inputs(channels, (32, 32), batch=1))
    except Exception:  # only a hint: fall back to the declaration order
        ran = [(n, m, None) for n, m in model.named_modules() if n]
    finally:
        for handle in handles:
            handle.remove()
    linear = [n for n, m, _ in ran if isinstance(m, nn.Linear)]
    convs = [n for n, m, out in ran if isinstance(m, nn.Conv2d)]
    found = {"classifier": linear[-1:], "first_conv": convs[:1], "target_layer": convs[-1:]}[field_name]
    return f"BackboneSpec(..., {field_name}={found[0]!r})" if found else f"BackboneSpec(..., {field_name}=...)"


def _ran(ran: list, name: str, module: Any, args: Any, output: Any) -> None:
    ran.append((name, module, output))


def _submodule(ctx: CheckContext, model: Any, field_name: str, where: str):
    dotted = getattr(ctx.spec, field_name)
    found = resolve_layer(model, dotted)  # the core's reading: negative indices, wrappers' inner network
    if found is not None:
        return model.get_submodule(found)
    top = ", ".join(name for name, _ in model.named_children()) or "(none)"
    ctx.fail(
        f"{field_name}={dotted!r} is not a submodule of the module {where} returns (its top-level children: {top})",
        f"declare the dotted name as model.named_modules() spells it, e.g. {_suggest(model, field_name)} "
        f"('-1' indexes the last child of a Sequential; a wrapper module sets {INNER_ATTRIBUTE} to the "
        "wrapped network's name)",
    )


def _check_classifier(ctx: CheckContext, model: Any, where: str, classes: int) -> None:
    from torch import nn

    head = _submodule(ctx, model, "classifier", where)
    ctx.require(
        isinstance(head, nn.Linear),
        f"classifier={ctx.spec.classifier!r} is a {type(head).__name__} in the module {where} returns, not an nn.Linear",
        f"name the final nn.Linear layer itself, e.g. {_suggest(model, 'classifier')}",
    )
    ctx.require(
        head.out_features == classes,
        f"classifier={ctx.spec.classifier!r} has out_features={head.out_features} in the module {where} returns; "
        f"expected num_classes={classes}",
        "declare the final layer, the one sized to num_classes",
    )


@conformance_check("backbone")
def check_backbone_declared_layers(ctx: CheckContext) -> None:
    """The declared classifier, first_conv and target_layer exist in ``build``'s module and run in forward."""
    import torch

    undeclared = [f for f in LAYER_FIELDS if getattr(ctx.spec, f) is None]
    model = _build(ctx, 3, _configs(ctx)[-1][1]) if undeclared else None
    uses = {"classifier": "transfer learning", "first_conv": "fitting 3-channel weights to other channel counts",
            "target_layer": "Grad-CAM"}
    for field_name in undeclared:
        ctx.advise(f"declares no {field_name}: {uses[field_name]} falls back to guessing it (with a warning)",
                   f"declare it, e.g. {_suggest(model, field_name)}")
    for in_channels, size in _configs(ctx):
        model = _build(ctx, in_channels, size).eval()
        where = f"build{(in_channels, NUM_CLASSES, size)}"
        layers = {f: _submodule(ctx, model, f, where) for f in LAYER_FIELDS if getattr(ctx.spec, f) is not None}
        if ctx.spec.classifier is not None:
            _check_classifier(ctx, model, where, NUM_CLASSES)
        seen: dict[str, Any] = {}
        handles = [layer.register_forward_hook(functools.partial(_record, seen, f)) for f, layer in layers.items()]
        try:
            with torch.no_grad():
                ctx.call("forward", model, _inputs(in_channels, size))
        finally:
            for handle in handles:
                handle.remove()
        for field_name in LAYER_FIELDS:
            dotted = getattr(ctx.spec, field_name)
            if dotted is not None:
                ctx.require(field_name in seen, f"{field_name}={dotted!r} exists but never runs in the forward pass "
                            f"of {where}", f"declare the layer the forward pass actually uses for {field_name}")
        if "first_conv" in seen:
            args = seen["first_conv"][0]
            channels = args[0].shape[1] if args and isinstance(args[0], torch.Tensor) and args[0].ndim == 4 else None
            ctx.require(
                channels == in_channels,
                f"first_conv={ctx.spec.first_conv!r} received {channels} channels in {where}; expected in_channels="
                f"{in_channels}", "declare the convolution that sees the input image (the stem), not a later one",
            )
        if "target_layer" in seen:
            output = seen["target_layer"][1]
            output = output[0] if isinstance(output, (tuple, list)) and output else output
            # a global pooling layer outputs one position at every image size: Grad-CAM maps would be constant
            # (a late block may legitimately be 1x1 at the kit's tiny sizes, so judge the layer, not the size)
            target = layers["target_layer"]
            pool_size = getattr(target, "output_size", None)
            pooled = isinstance(target, (torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveMaxPool2d)) and \
                ((pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)) == (1, 1)
            ctx.require(
                isinstance(output, torch.Tensor) and output.ndim >= 3 and not pooled,
                f"target_layer={ctx.spec.target_layer!r} outputs {getattr(output, 'shape', type(output).__name__)}"
                f" in {where}; Grad-CAM needs a feature map (N, C, H, W) or tokens (N, L, D)"
                + (", and a global pooling gives one position per image, so every map would be constant" if pooled
                   else ""),
                "declare a late convolutional block (or transformer block) before global pooling",
            )


@conformance_check("backbone", applies=lambda spec: spec.build_native is not None or bool(spec.weights))
def check_backbone_native(ctx: CheckContext) -> None:
    """``build_native(num_classes)`` builds the 3-channel architecture with the declared layers; runs at its size."""
    import torch
    from torch import nn

    spec: BackboneSpec = ctx.spec
    ctx.require(
        callable(spec.build_native), "declares pretrained weights but no build_native",
        "add build_native=lambda num_classes: <the architecture exactly as the weights were trained>",
    )
    model = ctx.call(f"build_native({NUM_CLASSES})", spec.build_native, NUM_CLASSES,
                     fix="build_native(num_classes) must return the unadapted architecture")
    ctx.require(isinstance(model, nn.Module), f"build_native returned {type(model).__name__}, not an nn.Module",
                "return the network from build_native")
    if spec.classifier is not None:
        _check_classifier(ctx, model, f"build_native({NUM_CLASSES})", NUM_CLASSES)
    for field_name in ("first_conv", "target_layer"):
        if getattr(spec, field_name) is not None:
            _submodule(ctx, model, field_name, f"build_native({NUM_CLASSES})")
    default = spec.default_weights()
    size = spec.input_size or (default.input_size if isinstance(default, PretrainedWeights) else (224, 224))
    with torch.no_grad():
        out = ctx.call(f"forward of build_native({NUM_CLASSES}) at its input size {tuple(size)}",
                       model.eval(), _inputs(3, size, batch=1),
                       fix="build_native must take 3-channel images of the declared input_size")
    _check_logits(ctx, out, f"build_native({NUM_CLASSES})", batch=1)


def _numbers(value: Any, length: int | None = None) -> bool:
    return (isinstance(value, tuple) and (length is None or len(value) == length)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


@conformance_check("backbone", applies=lambda spec: bool(spec.weights))
def check_backbone_weights(ctx: CheckContext) -> None:
    """Each declared PretrainedWeights is well-formed; with ``check_weights=True`` it loads into build_native."""
    spec: BackboneSpec = ctx.spec
    names = []
    for weights in spec.weights:
        ctx.require(
            isinstance(weights, PretrainedWeights),
            f"weights holds {weights!r}, not a PretrainedWeights",
            "declare weights=(PretrainedWeights(name=..., load=..., num_classes=..., input_size=..., mean=..., "
            "std=...),); see sklearn_imgcls.plugin.sources for ready-made loaders",
        )
        label = f"weights {weights.name!r}"
        ctx.require(isinstance(weights.name, str) and weights.name.strip() == weights.name and weights.name,
                    f"{label}: name must be a non-empty string without surrounding spaces", "fix the name")
        ctx.require(weights.name not in names, f"{label} is declared twice", "give each weights entry its own name")
        names.append(weights.name)
        ctx.require(callable(weights.load), f"{label}: load is {weights.load!r}, not callable",
                    "load() must return the native state dict")
        ctx.require(isinstance(weights.num_classes, int) and weights.num_classes > 0,
                    f"{label}: num_classes={weights.num_classes!r}", "give the pretrained head's output count")
        ctx.require(_numbers(weights.input_size, 2) and min(weights.input_size) > 0,
                    f"{label}: input_size={weights.input_size!r}", "give the training size as a tuple (H, W)")
        for stat in ("mean", "std"):
            value = getattr(weights, stat)
            ctx.require(_numbers(value, 3), f"{label}: {stat}={value!r} is not a tuple of 3 numbers",
                        "give one value per RGB channel, e.g. IMAGENET_MEAN / IMAGENET_STD from sklearn_imgcls.plugin.specs")
            ctx.require(all(0 <= v <= 1 for v in value) and (stat == "mean" or min(value) > 0),
                        f"{label}: {stat}={value!r} is outside (0, 1]", "use 0-1 pixel units (divide 0-255 values by 255)")
    ctx.require(sum(bool(getattr(w, "default", False)) for w in spec.weights) <= 1,
                "more than one weights entry has default=True", "mark at most one entry as the default")
    if not ctx.options.check_weights:
        return
    for weights in spec.weights:
        try:
            state = weights.load()
        except OSError as exc:  # what the contract asks of a missing file: the file is absent here, not the loader wrong
            raise ctx.error(f"weights {weights.name!r} are not on this machine ({describe_exception(exc)})",
                            "provide the file the message names, or run the kit without check_weights=True") from exc
        except Exception as exc:  # foreign code: any other exception is the finding
            raise ctx.error(f"weights {weights.name!r}: load() raised {describe_exception(exc)}",
                            "load() must return a state dict, or raise OSError naming the file it expects") from exc
        ctx.require(isinstance(state, dict), f"weights {weights.name!r}: load() returned {type(state).__name__}",
                    "return the state dict (a mapping of parameter names to tensors)")
        model = ctx.call(f"build_native({weights.num_classes})", spec.build_native, weights.num_classes)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            ctx.fail(f"weights {weights.name!r} do not fit build_native({weights.num_classes}): "
                     f"{describe_exception(exc)}",
                     "make load() return the state dict of exactly the build_native architecture "
                     "(rename or drop keys in load())")


@conformance_check("backbone")
def check_backbone_pickles(ctx: CheckContext) -> None:
    """The built module survives pickle and deepcopy with the same outputs (estimators are saved this way)."""
    import torch

    in_channels, size = _configs(ctx)[-1]
    model = _build(ctx, in_channels, size).eval()
    x = _inputs(in_channels, size)
    with torch.no_grad():
        expected = model(x)
        for how, clone in (("pickle", lambda m: pickle.loads(pickle.dumps(m))), ("copy.deepcopy", copy.deepcopy)):
            copied = ctx.call(f"{how} of the built module", clone, model,
                              fix="keep lambdas, local functions, open files and generators out of the module; "
                                  "use module-level functions and nn.Module attributes")
            ctx.require(torch.allclose(copied.eval()(x), expected, atol=1e-6),
                        f"the module gives other outputs after {how}",
                        "keep all state in parameters, buffers or plain attributes")


@conformance_check("backbone")
def check_backbone_seeded(ctx: CheckContext) -> None:
    """The same torch seed builds the same initial weights (``random_state`` makes fits repeatable)."""
    import torch

    in_channels, size = _configs(ctx)[-1]
    # parameters only: the reused network's BatchNorm statistics moved in the train-mode forward of other checks
    first = dict(_build(ctx, in_channels, size).named_parameters())
    second = dict(_build(ctx, in_channels, size, fresh=True).named_parameters())
    differ = [k for k in first if k not in second or not torch.equal(first[k], second[k])]
    ctx.require(not differ, f"two builds after torch.manual_seed(0) differ in {differ[:5]}",
                "draw initial weights from torch's default generator (nn.init, nn.Linear/Conv2d defaults); "
                "do not seed from time or numpy's global state")


BACKBONE_CHECKS = (
    check_backbone_output,
    check_backbone_backward,
    check_backbone_declared_layers,
    check_backbone_native,
    check_backbone_weights,
    check_backbone_pickles,
    check_backbone_seeded,
)
