"""BackboneSpecs for timm models, declared from timm's own configuration.

Every fact the core needs is read from timm, never guessed:

* ``classifier``, ``first_conv``, ``input_size``, ``mean`` and ``std`` from
  the model's ``pretrained_cfg`` (:func:`timm.models.get_pretrained_cfg`);
* ``target_layer`` (Grad-CAM) from the model's ``feature_info``: the module
  of its last feature stage. For the curated set it is written in
  :data:`~sklearn_imgcls_timm.CURATED` (the suite checks it against
  ``feature_info``) so that listing builds no network; any other model is
  built once on the ``meta`` device (no memory, no weights) to read it;
* ``weights``: one :class:`~sklearn_imgcls.plugin.PretrainedWeights` per
  pretrained tag timm knows (``timm.list_pretrained("<model>.*")``), loaded
  offline by :mod:`sklearn_imgcls_timm.weights`.

``build`` makes ``timm.create_model(model, in_chans=..., num_classes=...)``
for the images; models that cannot take images that small (ConvNeXt's
stride-2 downsampling below 32 pixels, a ViT's 16-pixel patches) get their
inputs upsampled to the smallest size they accept, found by running the
network on the ``meta`` device, and ViTs are built with ``img_size=`` that
size so their position embeddings fit.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sklearn_imgcls.plugin import BackboneSpec, PretrainedWeights

from .weights import TimmWeights

__all__ = ["PREFIX", "ResizeInput", "build_native", "build_timm", "model_input_size", "timm_spec"]

#: registry names are ``PREFIX + <timm model name>``
PREFIX = "timm:"


class ResizeInput:
    """Forward pre-hook that resizes the input batch to ``size`` (bilinear; it only enlarges).

    A module-level class, not a closure, so that networks carrying it pickle.

    Parameters
    ----------
    size : tuple of int
        ``(H, W)`` the network is fed.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        """Return the arguments with the first one resized (None: unchanged)."""
        images = args[0]
        if tuple(images.shape[-2:]) == self.size:
            return None
        return (F.interpolate(images, size=self.size, mode="bilinear", align_corners=False), *args[1:])

    def __repr__(self) -> str:
        return f"ResizeInput({self.size})"


def _pretrained_cfg(model: str):
    from timm.models import get_pretrained_cfg

    return get_pretrained_cfg(model)


def _fixed_input_size(model: str) -> bool:
    cfg = _pretrained_cfg(model)
    return bool(cfg is not None and cfg.fixed_input_size)


def _round_up(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    return tuple(multiple * math.ceil(side / multiple) for side in size)


def _accepts(model: str, in_channels: int, size: tuple[int, int], params: dict) -> bool:
    """Whether ``model`` runs on ``size`` inputs: a forward pass on the meta device (no memory, no compute)."""
    import timm

    kwargs = dict(params)
    if _fixed_input_size(model):
        kwargs.setdefault("img_size", size)
    try:
        with torch.device("meta"):
            network = timm.create_model(model, pretrained=False, in_chans=in_channels, num_classes=2, **kwargs)
            network.eval()
            with torch.no_grad():
                network(torch.empty(2, in_channels, *size))
    except (RuntimeError, AssertionError, ValueError, IndexError):
        return False
    return True


def model_input_size(model: str, in_channels: int, image_size: tuple[int, int], params: dict | None = None
                     ) -> tuple[int, int]:
    """The smallest input size ``model`` accepts, starting from the images' own size.

    Candidates, in order: the image size; it rounded up to multiples of 16
    and of 32 (patch sizes, total strides); twice and four times it (rounded
    up to 32); the model's native input size.

    Parameters
    ----------
    model : str
        timm model name.
    in_channels : int
        Input channels.
    image_size : tuple of int
        ``(H, W)`` of the images.
    params : dict or None
        Extra ``timm.create_model`` arguments the network is built with.

    Returns
    -------
    tuple of int
        ``(H, W)`` the network is fed (``image_size`` when it fits as is).

    Raises
    ------
    ValueError
        When no candidate fits; names the model and the sizes tried.
    """
    params = dict(params or {})
    image_size = (int(image_size[0]), int(image_size[1]))
    cfg = _pretrained_cfg(model)
    native = tuple(cfg.input_size[-2:]) if cfg is not None else (224, 224)
    candidates = [image_size, _round_up(image_size, 16), _round_up(image_size, 32),
                  _round_up((2 * image_size[0], 2 * image_size[1]), 32),
                  _round_up((4 * image_size[0], 4 * image_size[1]), 32), native]
    tried: list[tuple[int, int]] = []
    for size in candidates:
        if size in tried:
            continue
        tried.append(size)
        if _accepts(model, in_channels, size, params):
            return size
    raise ValueError(
        f"timm model {model!r} accepts none of the input sizes {tried} for {image_size[0]}x{image_size[1]} "
        f"images with {in_channels} channel(s) and parameters {params}. Check backbone_params, or use "
        f"TransferClassifier(input_size=...) to resize the images."
    )


def build_timm(model: str, in_channels: int, num_classes: int, image_size: tuple[int, int], **params: Any
               ) -> nn.Module:
    """``timm.create_model(model)`` without weights, for ``in_channels`` x ``image_size`` images.

    Parameters
    ----------
    model : str
        timm model name (``"resnet18"``).
    in_channels, num_classes : int
        Input channels and output logits.
    image_size : tuple of int
        ``(H, W)`` of the images.
    **params
        Passed to :func:`timm.create_model` (``drop_rate=0.2``, ``img_size=64``, ...).

    Returns
    -------
    torch.nn.Module
        timm's network; when it needs larger inputs than the images (see
        :func:`model_input_size`) it carries a :class:`ResizeInput` forward
        pre-hook, so module names stay timm's own.
    """
    import timm

    image_size = (int(image_size[0]), int(image_size[1]))
    try:
        size = model_input_size(model, in_channels, image_size, params)
        kwargs = dict(params)
        if _fixed_input_size(model):
            kwargs.setdefault("img_size", size)
        network = timm.create_model(model, pretrained=False, in_chans=in_channels, num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise TypeError(
            f"timm model {model!r} does not take backbone_params {sorted(params)}: {exc}. backbone_params are "
            f"passed to timm.create_model({model!r}, ...); see that model's class for the accepted arguments."
        ) from None
    if size != image_size:
        network.register_forward_pre_hook(ResizeInput(size))
    return network


def build_native(model: str, num_classes: int) -> nn.Module:
    """timm's ``model`` exactly as its pretrained weights were trained (3 channels, native size).

    Parameters
    ----------
    model : str
        timm model name.
    num_classes : int
        Outputs of the head.

    Returns
    -------
    torch.nn.Module
    """
    import timm

    return timm.create_model(model, pretrained=False, num_classes=num_classes)


def _meta_facts(model: str) -> tuple[str | None, str | None, float]:
    """Grad-CAM target layer, classifier (when it is an nn.Linear) and parameters (millions) of ``model``."""
    import timm

    with torch.device("meta"):
        network = timm.create_model(model, pretrained=False)
    info = getattr(network, "feature_info", None)
    target = None
    if isinstance(info, (list, tuple)) and info:
        target = info[-1].get("module")
    elif info is not None and hasattr(info, "module_name"):
        target = info.module_name()[-1]
    classifier = network.pretrained_cfg.get("classifier")
    if not isinstance(classifier, str) or not isinstance(_submodule(network, classifier), nn.Linear):
        classifier = None  # several heads (distilled ViTs) or a 1x1 convolution: not declared
    millions = sum(p.numel() for p in network.parameters()) / 1e6
    return target, classifier, millions


def _submodule(network: nn.Module, name: str) -> nn.Module | None:
    try:
        return network.get_submodule(name)
    except AttributeError:
        return None


def pretrained_weights(model: str) -> tuple[PretrainedWeights, ...]:
    """One :class:`PretrainedWeights` per pretrained tag timm knows for ``model``.

    Tags without a classification head (``num_classes`` 0: feature-only
    weights) are left out: the contract loads weights into
    ``build_native(num_classes)`` and then replaces that head.
    """
    import timm

    default_cfg = _pretrained_cfg(model)
    default_tag = default_cfg.tag if default_cfg is not None else None
    found = []
    for full_name in timm.list_pretrained(f"{model}.*"):
        tag = full_name.split(".", 1)[1]
        cfg = _pretrained_cfg(full_name)
        if cfg is None or not cfg.num_classes:
            continue
        source = cfg.hf_hub_id or cfg.url or "timm"
        found.append(PretrainedWeights(
            name=tag,
            load=TimmWeights(model, tag),
            num_classes=int(cfg.num_classes),
            input_size=tuple(int(s) for s in cfg.input_size[-2:]),
            mean=tuple(float(v) for v in cfg.mean),
            std=tuple(float(v) for v in cfg.std),
            default=tag == default_tag,
            description=f"timm {model}.{tag} ({source}, license {cfg.license or 'unknown'})",
        ))
    return tuple(found)


def timm_spec(model: str, description: str | None = None, target_layer: str | None = None,
              tags: tuple[str, ...] = ()) -> BackboneSpec:
    """The :class:`~sklearn_imgcls.plugin.BackboneSpec` registered as ``timm:<model>``.

    Parameters
    ----------
    model : str
        A name in ``timm.list_models()``.
    description : str or None
        One line for listings; None writes one from the parameter count.
    target_layer : str or None
        Grad-CAM layer; None reads it from the model's ``feature_info``
        (building the model on the ``meta`` device).
    tags : tuple of str
        Extra tags (``"timm"`` and ``"pretrained"``/``"scratch"`` are added).

    Returns
    -------
    BackboneSpec

    Raises
    ------
    ValueError
        When timm has no model called ``model``; lists close names.
    """
    import timm

    if "." in model:
        architecture, _, tag = model.partition(".")
        raise ValueError(f"{model!r} names pretrained weights, not a model: register {architecture!r} and pass "
                         f"weights={tag!r} to the estimator.")
    if not timm.is_model(model):
        import difflib

        close = difflib.get_close_matches(model, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"timm has no model {model!r}.{hint} timm.list_models('<pattern>') lists them.")
    cfg = _pretrained_cfg(model)
    classifier = cfg.classifier if cfg is not None else None
    if target_layer is None or description is None:
        target, classifier, millions = _meta_facts(model)
        target_layer = target_layer or target
        description = description or f"timm {model}, {millions:.1f}M parameters"
    weights = pretrained_weights(model)
    return BackboneSpec(
        name=PREFIX + model,
        build=partial(build_timm, model),
        description=description,
        tags=("timm", *tags, "pretrained" if weights else "scratch"),
        classifier=classifier if isinstance(classifier, str) else None,
        first_conv=cfg.first_conv if cfg is not None and isinstance(cfg.first_conv, str) else None,
        target_layer=target_layer,
        build_native=partial(build_native, model),
        weights=weights,
        input_size=tuple(int(s) for s in cfg.input_size[-2:]) if cfg is not None else None,
    )
