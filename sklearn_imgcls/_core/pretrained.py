"""Building networks around pretrained weights, and the fine-tuning policy.

* :func:`build_pretrained_network` makes the :class:`~sklearn_imgcls._core.network.ImageNetwork`
  for a backbone name and a weights source (see :mod:`sklearn_imgcls._core.weights`),
  with a new head sized to the classes and the input adaptation the weights
  need (grayscale to RGB, resizing, the weights' own normalisation). What it
  needs to know it reads from the backbone's spec: ``build_native`` (the
  pretrained architecture), ``weights`` (their ``load``, input size, mean and
  std) and ``classifier`` (the head to replace; see :mod:`.layers`).
* :func:`apply_freeze` freezes parameters by policy (skorch's own
  :class:`~skorch.callbacks.Unfreezer` releases them for the fine-tuning epochs).
* :func:`input_statistics` is the per-channel mean and std of the training
  images that a network standardises its inputs with when its weights carry
  no normalisation of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .data import ImageData, channel_statistics
from .layers import declared_layer, first_conv_channels
from .network import ImageNetwork
from ..plugin.registry import get_registry
from .weights import LoadedWeights, WeightsError, is_checkpoint_path, load_named, load_weights, select_weights

__all__ = ["NATIVE_SOURCES", "PretrainedNetwork", "apply_freeze", "build_from_recipe", "build_pretrained_network",
           "first_conv_channels", "input_statistics", "leading_blocks", "native_network", "replace_head"]

#: images used to estimate the per-channel mean and std of file inputs
STATISTICS_SAMPLE = 512


@dataclass
class PretrainedNetwork:
    """A built network and the dotted name (inside its backbone) of its head."""

    network: ImageNetwork
    head: str


def replace_head(model: nn.Module, num_outputs: int | None, spec: Any = None) -> str:
    """Replace the classification head of ``model`` by a fresh one with ``num_outputs``.

    The head is the layer ``spec.classifier`` declares (see
    :mod:`sklearn_imgcls._core.layers`; without a declaration, the last
    ``nn.Linear``, with a warning). An ``nn.Linear`` head gets a new
    ``nn.Linear``, a 1x1 ``nn.Conv2d`` head (SqueezeNet-style) a new
    ``nn.Conv2d``; ``num_outputs=None`` replaces it by ``nn.Identity``
    (feature extraction).

    Returns
    -------
    str
        The head's dotted name in ``model``.
    """
    name = declared_layer(spec, model, "classifier")
    old = model.get_submodule(name)
    if num_outputs is None:
        new = nn.Identity()
    elif isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_outputs, bias=old.bias is not None)
    elif isinstance(old, nn.Conv2d):
        new = nn.Conv2d(old.in_channels, num_outputs, old.kernel_size, old.stride, old.padding, old.dilation,
                        old.groups if old.groups == 1 else 1, bias=old.bias is not None)
    else:
        where = getattr(spec, "name", type(model).__name__)
        raise TypeError(
            f"The classifier of backbone {where!r} ({name!r}) is a {type(old).__name__}; transfer learning replaces "
            f"an nn.Linear or nn.Conv2d head. Declare BackboneSpec(classifier=...) naming that layer."
        )
    model.set_submodule(name, new)
    return name


def _load_into(model: nn.Module, loaded: LoadedWeights) -> None:
    try:
        model.load_state_dict(loaded.state_dict, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n", 1)[-1].strip().splitlines()
        raise WeightsError(
            f"The weights from {loaded.source} do not fit this architecture: "
            f"{'; '.join(line.strip() for line in detail[:3])}. Use the backbone name the "
            f"checkpoint was trained with."
        ) from None


def _rebuild_recorded(loaded: LoadedWeights, backbone: str) -> tuple[nn.Module, int, tuple[int, int]]:
    """Build the network a :func:`~sklearn_imgcls._core.weights.save_weights` file recorded, and load it.

    Returns the model, its input channels and the image size it was built for.
    """
    recipe = loaded.recipe
    if recipe["backbone"] != backbone:
        raise WeightsError(
            f"The weights from {loaded.source} were saved from backbone {recipe['backbone']!r}: not a {backbone} "
            f"checkpoint. Pass backbone={recipe['backbone']!r}."
        )
    try:
        channels = int(recipe["build_channels"])
        size = tuple(int(v) for v in recipe["build_size"])
        model = build_from_recipe({**recipe, "build_channels": channels, "build_size": size,
                                   "num_outputs": int(recipe["num_outputs"]),
                                   "replace_head": bool(recipe.get("replace_head", False)),
                                   "backbone_params": dict(recipe.get("backbone_params") or {})})
    except (KeyError, TypeError, ValueError):
        raise WeightsError(f"The weights from {loaded.source} carry an incomplete build recipe; save them again.") from None
    _load_into(model, loaded)
    return model, channels, size


#: recipe sources meaning "the spec's build_native" ("torchvision": files written before contract v2)
NATIVE_SOURCES = ("native", "torchvision")


def native_network(spec: Any, num_classes: int) -> nn.Module:
    """``spec.build_native(num_classes)``: the architecture as its pretrained weights were trained.

    Raises
    ------
    WeightsError
        When the backbone declares no ``build_native``.
    """
    if spec.build_native is None:
        raise WeightsError(
            f"Backbone {spec.name!r} (plugin {spec.plugin or '?'}) declares no build_native, so its pretrained "
            f"architecture cannot be built; the plugin must set BackboneSpec(build_native=...)."
        )
    return spec.build_native(num_classes)


def _native_channels(spec: Any, model: nn.Module) -> int:
    """Input channels of a native network: its declared first conv's, else 3 (RGB, as pretrained)."""
    return (first_conv_channels(model, spec) if spec.first_conv else None) or 3


def build_from_recipe(recipe: dict) -> nn.Module:
    """The backbone, head included, that a build recipe describes (``ImageNetwork.recipe``), without weights.

    ``source="native"`` (or ``"torchvision"``, its name before contract v2)
    is the spec's ``build_native`` architecture, ``"registry"`` the spec's
    ``build`` for ``build_channels`` and ``build_size``; with
    ``replace_head`` the head is then resized to ``num_outputs`` as
    :func:`replace_head` does in training.
    """
    spec = get_registry().get("backbone", recipe["backbone"])
    outputs = 1 if recipe["replace_head"] else recipe["num_outputs"]
    if recipe["source"] in NATIVE_SOURCES:
        model = native_network(spec, outputs)
    else:
        model = get_registry().build("backbone", recipe["backbone"], recipe["build_channels"], outputs,
                                     tuple(recipe["build_size"]), **(recipe["backbone_params"] or {}))
    if recipe["replace_head"]:
        replace_head(model, recipe["num_outputs"], spec)
    return model


def _standard_architecture(spec: Any, loaded: LoadedWeights) -> nn.Module:
    """The native architecture of ``spec`` holding a checkpoint written outside this package.

    The head is sized to the checkpoint's; the caller takes the input size
    and normalisation from the spec's default weights (declarations only:
    nothing is read).
    """
    default = spec.default_weights()
    model = native_network(spec, default.num_classes if default is not None else 1)
    head = declared_layer(spec, model, "classifier")
    head_weight = loaded.state_dict.get(f"{head}.weight")
    if head_weight is None:
        raise WeightsError(
            f"The weights from {loaded.source} have no {head}.weight: not a {spec.name} checkpoint of the "
            f"standard architecture."
        )
    if head_weight.shape[0] != model.get_submodule(head).weight.shape[0]:
        replace_head(model, int(head_weight.shape[0]), spec)
    _load_into(model, loaded)
    return model


def build_pretrained_network(
    backbone: str,
    weights: str | None,
    data: ImageData,
    num_outputs: int | None,
    input_size: tuple[int, int] | None = None,
    backbone_params: dict | None = None,
    normalize: bool = True,
) -> PretrainedNetwork:
    """Build the network for ``backbone`` initialised from ``weights``.

    Parameters
    ----------
    backbone : str
        Registry backbone name.
    weights : str or None
        None (random initialisation, the registry's adapted network), a
        weights name the backbone declares (``BackboneSpec.weights``;
        ``"DEFAULT"`` picks ``spec.default_weights()``), or a checkpoint path.
    data : ImageData
        The training images: their shape, and their statistics when the
        weights carry no normalisation.
    num_outputs : int or None
        Classes of the new head, or None for a feature extractor.
    input_size : tuple of int or None
        Resize inputs to this ``(H, W)``; None uses the weights' declared
        size (named weights, checkpoints of the native architecture) or the
        images' size.
    backbone_params : dict or None
        Extra builder arguments for registry backbones.
    normalize : bool
        When the weights carry no normalisation (``weights=None``, most
        checkpoints): standardise inputs with the images' statistics (True)
        or leave them as they are (False). Named weights always use their
        declared mean and std.

    Returns
    -------
    PretrainedNetwork
    """
    registry = get_registry()
    spec = registry.get("backbone", backbone)
    channels, height, width = data.image_shape
    params = dict(backbone_params or {})
    mean = std = None
    in_channels = None
    recipe = {"source": "registry", "backbone": backbone, "backbone_params": params, "build_channels": channels,
              "build_size": (height, width), "replace_head": True}
    if weights is None:
        model = registry.build("backbone", backbone, channels, num_outputs or 1, (height, width), **params)
    elif is_checkpoint_path(weights):
        loaded = load_weights(backbone, weights)
        if loaded.recipe is not None:  # written by save_weights: rebuild the very variant it was trained as
            model, in_channels, size = _rebuild_recorded(loaded, backbone)
            recipe.update(source="native" if loaded.recipe.get("source") in NATIVE_SOURCES else "registry",
                          backbone_params=loaded.recipe.get("backbone_params") or {}, build_channels=in_channels,
                          build_size=size)
            input_size = input_size or size
        elif not loaded.legacy and spec.build_native is not None:  # a checkpoint of the native architecture
            model = _standard_architecture(spec, loaded)
            in_channels = _native_channels(spec, model)
            recipe.update(source="native", build_channels=in_channels)
            default = spec.default_weights()
            input_size = input_size or (default.input_size if default is not None else spec.input_size)
            if default is not None:
                loaded.mean, loaded.std = loaded.mean or default.mean, loaded.std or default.std
        else:  # an older save_weights file, or an architecture without build_native: built for these images
            in_channels = first_conv_channels(loaded.state_dict, spec) or channels
            model = registry.build("backbone", backbone, in_channels, 1, (height, width), **params)
            head = declared_layer(spec, model, "classifier")
            head_weight = loaded.state_dict.get(f"{head}.weight")
            if head_weight is None:
                raise WeightsError(f"The weights from {loaded.source} have no {head}.weight: not a {backbone} checkpoint.")
            replace_head(model, int(head_weight.shape[0]), spec)
            _load_into(model, loaded)
            recipe.update(build_channels=in_channels)
        mean, std = loaded.mean, loaded.std
    else:
        if not spec.weights:
            raise WeightsError(
                f"Backbone {backbone!r} has no pretrained weights to name; backbones with weights: "
                f"{', '.join(n for n, s in registry.specs('backbone').items() if s.weights)}. "
                f"Pass weights=None or a checkpoint path."
            )
        loaded = load_named(spec, weights)
        model = native_network(spec, select_weights(spec, weights).num_classes)
        _load_into(model, loaded)
        in_channels = _native_channels(spec, model)
        recipe.update(source="native", build_channels=in_channels)
        input_size = input_size or loaded.input_size
        mean, std = loaded.mean, loaded.std
    head = replace_head(model, num_outputs, spec)
    if mean is None:
        mean, std = input_statistics(data, normalize, in_channels)
    recipe.update(num_outputs=num_outputs, network_in_channels=in_channels,
                  network_input_size=tuple(input_size) if input_size is not None else None)
    network = ImageNetwork(
        model,
        torch.as_tensor(mean),
        torch.as_tensor(std),
        in_channels=in_channels,
        input_size=tuple(input_size) if input_size is not None else None,
    )
    network.recipe = recipe
    return PretrainedNetwork(network, head)


def leading_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The network's blocks in order: top-level children with parameters.

    A child named ``features`` that is an ``nn.Sequential`` (VGG, MobileNet,
    EfficientNet, ConvNeXt, our small CNNs) contributes its own children.
    """
    blocks = []
    for name, child in model.named_children():
        if name == "features" and isinstance(child, nn.Sequential):
            blocks += [(f"features.{n}", c) for n, c in child.named_children() if any(True for _ in c.parameters())]
        elif any(True for _ in child.parameters()):
            blocks.append((name, child))
    return blocks


def apply_freeze(model: nn.Module, head: str, freeze) -> list[str]:
    """Freeze parameters of ``model`` by policy; return the names frozen.

    Parameters
    ----------
    model : torch.nn.Module
        The backbone (with its new head).
    head : str
        Dotted name of the head, never frozen.
    freeze : "backbone", "none" or int
        Everything but the head; nothing; or the first ``freeze`` blocks of
        :func:`leading_blocks`.
    """
    if freeze == "none":
        return []
    if freeze == "backbone":
        prefixes = [""]
    else:
        blocks = [name for name, _ in leading_blocks(model) if name != head and not head.startswith(name + ".")]
        prefixes = [name + "." for name in blocks[:freeze]]
    frozen = []
    for name, parameter in model.named_parameters():
        if name.startswith(head + ".") or not any(name.startswith(p) for p in prefixes):
            continue
        parameter.requires_grad_(False)
        frozen.append(name)
    return frozen



def input_statistics(data: ImageData, normalize: bool = True,
                     in_channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std that a network standardises the training images with.

    Parameters
    ----------
    data : ImageData
        The training images (files: a sample of :data:`STATISTICS_SAMPLE`).
    normalize : bool
        False: zeros and ones (inputs pass unchanged).
    in_channels : int or None
        Channels of the network's input when they differ from the images'
        (grayscale repeated to RGB): every channel then gets the images'
        overall mean and std.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Mean and std in the images' units (``[0, 1]`` for uint8); a zero std
        (a constant channel) becomes 1.
    """
    channels = in_channels or data.image_shape[0]
    if not normalize:
        return torch.zeros(channels), torch.ones(channels)
    mean, std = channel_statistics(data.tensor if data.in_memory else data.sample(STATISTICS_SAMPLE))
    if len(mean) != channels:
        mean, std = mean.mean().repeat(channels), std.mean().repeat(channels)
    return mean, torch.where(std > 1e-12, std, torch.ones_like(std))
