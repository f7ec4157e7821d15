"""torchvision architectures adapted to any input size and channel count (plugin).

The networks are torchvision's own (``torchvision.models.get_model``), with
four adaptations so they train on small, non-RGB images:

* the first convolution takes ``in_channels`` instead of 3;
* ResNets get a CIFAR-style stem (3x3 stride-1 convolution, no max-pool) on
  inputs smaller than ``small_input_threshold`` pixels, so an 8x8 image is not
  reduced to one pixel before the first residual stage;
* VGG pools with ``ceil_mode=True`` so its five pooling steps accept images
  smaller than 32x32;
* ConvNeXt and ViT, whose downsampling or patching needs a minimum size,
  upsample smaller inputs (ViT to the next multiple of its 16-pixel patch).

Pretrained weights are not loaded here (``build`` makes a fresh network).
Each spec declares torchvision's unadapted network (``build_native``) and
torchvision's weights for it, from torchvision's own metadata (URL, crop
size, mean, std, categories), read from the torch hub cache and downloaded
only when missing; :class:`~sklearn_imgcls.transfer.TransferClassifier`
loads them into ``build_native``'s network. The layer names (``classifier``,
``first_conv``, ``target_layer``) are torchvision's.

The classifier head is sized to ``num_classes``.
"""

from __future__ import annotations

import math
from functools import partial

from torch import nn

from .._core.network import resize_images
from ..plugin.hookspecs import hookimpl
from ..plugin.sources import url_weights
from ..plugin.specs import BackboneSpec, PretrainedWeights

#: name -> (description, classifier, first conv, Grad-CAM target layer), names as in torchvision's network
ARCHITECTURES: dict[str, tuple[str, str, str, str]] = {
    "resnet18": ("ResNet-18 (He et al., 2016), 11.7M parameters", "fc", "conv1", "layer4"),
    "resnet50": ("ResNet-50 (He et al., 2016), 25.6M parameters", "fc", "conv1", "layer4"),
    "vgg16": ("VGG-16 (Simonyan & Zisserman, 2015), 138M parameters", "classifier.6", "features.0", "features"),
    "mobilenet_v2": ("MobileNetV2 (Sandler et al., 2018), 3.5M parameters", "classifier.1", "features.0.0",
                     "features"),
    "mobilenet_v3_small": ("MobileNetV3-Small (Howard et al., 2019), 2.5M parameters", "classifier.3",
                           "features.0.0", "features"),
    "efficientnet_b0": ("EfficientNet-B0 (Tan & Le, 2019), 5.3M parameters", "classifier.1", "features.0.0",
                        "features"),
    "mobilenet_v3_large": ("MobileNetV3-Large (Howard et al., 2019), 5.5M parameters", "classifier.3",
                           "features.0.0", "features"),
    "convnext_tiny": ("ConvNeXt-Tiny (Liu et al., 2022), 28.6M parameters", "classifier.2", "features.0.0",
                      "features"),
    "vit_b_16": ("ViT-B/16 (Dosovitskiy et al., 2021), 86.6M parameters", "heads.head", "conv_proj",
                 "encoder.layers.encoder_layer_11.ln_1"),
}

#: smallest input side each family accepts without upsampling
MIN_SIDE = {"convnext": 32}


class Upsampled(nn.Module):
    """Resize inputs to ``size`` (bilinear, not antialiased: it only enlarges) before running ``model``.

    The spec's layer names refer to torchvision's network, here ``model``:
    ``sklearn_imgcls_inner`` says so (see :mod:`sklearn_imgcls._core.layers`).
    """

    sklearn_imgcls_inner = "model"

    def __init__(self, model: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.size = tuple(size)

    def forward(self, x):  # noqa: D102 - nn.Module API
        if tuple(x.shape[-2:]) != self.size:
            x = resize_images(x, self.size, antialias=False)
        return self.model(x)


def replace_first_conv(model: nn.Module, in_channels: int, name: str) -> None:
    """Make the first convolution of ``model`` (at ``name``) accept ``in_channels`` channels.

    Pretrained filters are kept: their mean over the input channels is
    repeated, scaled so activations keep their magnitude.
    """
    conv = model.get_submodule(name)
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    new.weight.data.copy_(
        conv.weight.data.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
        * (conv.in_channels / in_channels)
    )
    if conv.bias is not None:
        new.bias.data.copy_(conv.bias.data)
    model.set_submodule(name, new)


def adapt_small_inputs(model: nn.Module, arch: str, image_size: tuple[int, int], threshold: int) -> None:
    """Apply the small-image adaptations described in the module docstring."""
    if arch.startswith("resnet") and min(image_size) < threshold:
        model.conv1 = nn.Conv2d(
            model.conv1.in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False
        )
        model.maxpool = nn.Identity()
    if arch.startswith("vgg"):
        for module in model.modules():
            if isinstance(module, nn.MaxPool2d):
                module.ceil_mode = True


def build_torchvision(
    arch: str,
    in_channels: int,
    num_classes: int,
    image_size: tuple[int, int],
    small_input_threshold: int = 112,
) -> nn.Module:
    """Build torchvision's ``arch`` without weights, adapted to the inputs.

    Parameters
    ----------
    arch : str
        A ``torchvision.models`` architecture name.
    in_channels, num_classes : int
        Input channels and output logits.
    image_size : tuple of int
        ``(H, W)`` of the inputs.
    small_input_threshold : int
        Inputs whose smaller side is below this get the small-image stem.

    Returns
    -------
    torch.nn.Module
    """
    from torchvision.models import get_model

    first_conv = ARCHITECTURES[arch][2]
    if arch.startswith("vit"):
        side = 16 * math.ceil(max(image_size) / 16)
        model = get_model(arch, weights=None, num_classes=num_classes, image_size=side)
        replace_first_conv(model, in_channels, first_conv)
        return Upsampled(model, (side, side))
    model = get_model(arch, weights=None, num_classes=num_classes)
    adapt_small_inputs(model, arch, image_size, small_input_threshold)
    replace_first_conv(model, in_channels, first_conv)
    minimum = next((m for family, m in MIN_SIDE.items() if arch.startswith(family)), 1)
    if min(image_size) < minimum:
        scale = minimum / min(image_size)
        return Upsampled(model, (math.ceil(image_size[0] * scale), math.ceil(image_size[1] * scale)))
    return model


def build_native(arch: str, num_classes: int) -> nn.Module:
    """torchvision's ``arch`` exactly as its pretrained weights were trained, with ``num_classes`` outputs."""
    from torchvision.models import get_model

    return get_model(arch, weights=None, num_classes=num_classes)


def _size(crop) -> tuple[int, int]:
    size = tuple(int(v) for v in (crop if isinstance(crop, (list, tuple)) else (crop,)))
    return size * 2 if len(size) == 1 else size


def declared_weights(arch: str) -> tuple[PretrainedWeights, ...]:
    """torchvision's weights for ``arch``, declared from its own metadata (nothing is downloaded).

    Each member of ``get_model_weights(arch)`` becomes a
    :class:`~sklearn_imgcls.plugin.specs.PretrainedWeights` named as the
    member, loaded from its ``url`` through the torch hub cache
    (:func:`~sklearn_imgcls.plugin.sources.url_weights`), with the crop size,
    mean and std of its ``transforms()`` and as many classes as
    ``meta["categories"]``; torchvision's ``DEFAULT`` alias is the default.
    Weights without categories (VGG's ``IMAGENET1K_FEATURES``, a feature
    extractor) keep the 1000-output classifier of their architecture.
    Weights of another variant of the architecture (a different parameter
    count, e.g. ViT-B/16's SWAG end-to-end weights at 384x384) are left
    out: ``build_native`` builds the variant of the ``DEFAULT`` weights.
    """
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    declared = []
    for member in enum:
        if member.meta.get("num_params") != enum.DEFAULT.meta.get("num_params"):
            continue
        preset = member.transforms()
        accuracy = next(iter(member.meta.get("_metrics", {}).values()), {}).get("acc@1")
        declared.append(PretrainedWeights(
            name=member.name,
            load=url_weights(member.url),
            num_classes=len(member.meta["categories"] or range(1000)),
            input_size=_size(preset.crop_size),
            mean=tuple(float(v) for v in preset.mean),
            std=tuple(float(v) for v in preset.std),
            default=member is enum.DEFAULT,
            description=f"ImageNet-1k acc@1 {accuracy}" if accuracy is not None and accuracy == accuracy else "",
        ))
    return tuple(declared)


@hookimpl
def sklearn_imgcls_register_backbones() -> list[BackboneSpec]:
    """Register the torchvision architectures in :data:`ARCHITECTURES`, with torchvision's weights."""
    specs = []
    for arch, (description, classifier, first_conv, target) in ARCHITECTURES.items():
        weights = declared_weights(arch)
        default = next(w for w in weights if w.default)
        specs.append(BackboneSpec(
            name=arch,
            build=partial(build_torchvision, arch),
            description=description,
            tags=("torchvision", "pretrained"),
            classifier=classifier,
            first_conv=first_conv,
            target_layer=target,
            build_native=partial(build_native, arch),
            weights=weights,
            input_size=default.input_size,
        ))
    return specs
