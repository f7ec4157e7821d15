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

Pretrained weights are not loaded here (``build`` makes a fresh network);
:class:`~sklearn_imgcls.transfer.TransferClassifier` loads them into the
unadapted torchvision network. The specs list the weights torchvision knows.

The classifier head is sized to ``num_classes``.
"""

from __future__ import annotations

import math
from functools import partial

from torch import nn

from .._core.network import resize_images
from ..plugin.hookspecs import hookimpl
from ..plugin.specs import BackboneSpec

#: name -> (description, target layer for explanations)
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "resnet18": ("ResNet-18 (He et al., 2016), 11.7M parameters", "layer4"),
    "resnet50": ("ResNet-50 (He et al., 2016), 25.6M parameters", "layer4"),
    "vgg16": ("VGG-16 (Simonyan & Zisserman, 2015), 138M parameters", "features"),
    "mobilenet_v2": ("MobileNetV2 (Sandler et al., 2018), 3.5M parameters", "features"),
    "mobilenet_v3_small": ("MobileNetV3-Small (Howard et al., 2019), 2.5M parameters", "features"),
    "efficientnet_b0": ("EfficientNet-B0 (Tan & Le, 2019), 5.3M parameters", "features"),
    "mobilenet_v3_large": ("MobileNetV3-Large (Howard et al., 2019), 5.5M parameters", "features"),
    "convnext_tiny": ("ConvNeXt-Tiny (Liu et al., 2022), 28.6M parameters", "features"),
    "vit_b_16": ("ViT-B/16 (Dosovitskiy et al., 2021), 86.6M parameters", "encoder.layers.encoder_layer_11.ln_1"),
}

#: smallest input side each family accepts without upsampling
MIN_SIDE = {"convnext": 32}


class Upsampled(nn.Module):
    """Resize inputs to ``size`` (bilinear, not antialiased: it only enlarges) before running ``model``."""

    def __init__(self, model: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.size = tuple(size)

    def forward(self, x):  # noqa: D102 - nn.Module API
        if tuple(x.shape[-2:]) != self.size:
            x = resize_images(x, self.size, antialias=False)
        return self.model(x)


def replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """Make the first ``Conv2d`` of ``model`` accept ``in_channels`` channels.

    Pretrained filters are kept: their mean over the input channels is
    repeated, scaled so activations keep their magnitude.
    """
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
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

    if arch.startswith("vit"):
        side = 16 * math.ceil(max(image_size) / 16)
        model = get_model(arch, weights=None, num_classes=num_classes, image_size=side)
        replace_first_conv(model, in_channels)
        return Upsampled(model, (side, side))
    model = get_model(arch, weights=None, num_classes=num_classes)
    adapt_small_inputs(model, arch, image_size, small_input_threshold)
    replace_first_conv(model, in_channels)
    minimum = next((m for family, m in MIN_SIDE.items() if arch.startswith(family)), 1)
    if min(image_size) < minimum:
        scale = minimum / min(image_size)
        return Upsampled(model, (math.ceil(image_size[0] * scale), math.ceil(image_size[1] * scale)))
    return model


@hookimpl
def register_backbones() -> list[BackboneSpec]:
    """Register the torchvision architectures in :data:`ARCHITECTURES`."""
    from torchvision.models import get_model_weights

    return [
        BackboneSpec(
            name=arch,
            build=partial(build_torchvision, arch),
            description=description,
            tags=("torchvision", "pretrained"),
            target_layer=target,
            weights=tuple(w.name for w in get_model_weights(arch)),
            input_size=(224, 224),
        )
        for arch, (description, target) in ARCHITECTURES.items()
    ]
