"""Small convolutional networks trained from scratch (built-in plugin).

``simple_cnn`` follows the classic recipe: convolution → ReLU → max-pool
blocks, then fully connected layers. ``bn_cnn`` adds BatchNorm, two
convolutions per block and global average pooling. Both adapt to any input
size: a pooling step is skipped along a dimension that has shrunk to 1.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..plugin.hookspecs import hookimpl
from ..plugin.specs import BackboneSpec


def _pool_kernel(height: int, width: int) -> tuple[int, int]:
    return (2 if height >= 2 else 1, 2 if width >= 2 else 1)


class SimpleCNN(nn.Module):
    """Convolution → ReLU → max-pool blocks followed by two dense layers.

    Parameters
    ----------
    in_channels, num_classes : int
        Input channels and output logits.
    image_size : tuple of int
        ``(H, W)`` of the inputs, used to size the first dense layer.
    channels : sequence of int
        Output channels of each convolution block.
    hidden : int
        Units of the hidden dense layer.
    dropout : float
        Dropout before the output layer.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        height, width = image_size
        previous = in_channels
        for width_out in channels:
            kernel = _pool_kernel(height, width)
            layers += [
                nn.Conv2d(previous, width_out, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel),
            ]
            height, width = height // kernel[0], width // kernel[1]
            previous = width_out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(previous * height * width, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):  # noqa: D102 - nn.Module API
        return self.classifier(self.features(x))


def _per_block(convs_per_block: int | Sequence[int], blocks: int) -> list[int]:
    """``convs_per_block`` as one count per block, checked (at least one convolution each)."""
    counts = [convs_per_block] * blocks if isinstance(convs_per_block, int) else list(convs_per_block)
    if len(counts) != blocks or not all(isinstance(n, int) and n >= 1 for n in counts):
        raise ValueError(f"convs_per_block must be an integer >= 1 or one such integer per block ({blocks} blocks: "
                         f"channels has {blocks} entries), got {convs_per_block!r}.")
    return counts


class BatchNormCNN(nn.Module):
    """VGG-style blocks (conv-BN-ReLU, then max-pool) and a pooled or dense head.

    Parameters
    ----------
    in_channels, num_classes : int
        Input channels and output logits.
    image_size : tuple of int
        ``(H, W)`` of the inputs; decides where pooling is possible.
    channels : sequence of int
        Output channels of each block.
    dropout : float
        Dropout before the output layer (and before the hidden dense layer).
    convs_per_block : int or sequence of int
        Convolutions in each block before its max-pool: one number for every
        block, or one per block (``(1, 2, 2)``: a single convolution at full
        resolution, where a second one costs the most).
    hidden : int or None
        ``None``: global average pooling and one linear layer. An int: the
        last feature map is flattened into a dense layer of that many units
        (keeps where things are, which helps on small centred images).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: tuple[int, int],
        channels: Sequence[int] = (32, 64, 128),
        dropout: float = 0.2,
        convs_per_block: int | Sequence[int] = 2,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
        convs = _per_block(convs_per_block, len(channels))
        layers: list[nn.Module] = []
        height, width = image_size
        previous = in_channels
        for width_out, block_convs in zip(channels, convs):
            for _ in range(block_convs):
                layers += [
                    nn.Conv2d(previous, width_out, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(width_out),
                    nn.ReLU(inplace=True),
                ]
                previous = width_out
            kernel = _pool_kernel(height, width)
            if kernel != (1, 1):
                layers.append(nn.MaxPool2d(kernel))
            height, width = height // kernel[0], width // kernel[1]
        if channels and kernel == (1, 1):  # keeps the last activation at features.-2 (no parameters: same state dict)
            layers.append(nn.Identity())
        self.features = nn.Sequential(*layers)
        if hidden is None:
            head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(previous, num_classes)]
        else:
            head = [
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(previous * height * width, hidden, bias=False),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            ]
        self.classifier = nn.Sequential(*head)

    def forward(self, x):  # noqa: D102 - nn.Module API
        return self.classifier(self.features(x))


#: the declared layers of both networks: the last layer of ``classifier``, the first of ``features``,
#: and the last activation (before the last pooling step) for Grad-CAM
LAYERS = dict(classifier="classifier.-1", first_conv="features.0", target_layer="features.-2")


@hookimpl
def sklearn_imgcls_register_backbones() -> list[BackboneSpec]:
    """Register ``simple_cnn`` and ``bn_cnn`` (no pretrained weights: trained from scratch)."""
    return [
        BackboneSpec(
            name="simple_cnn",
            build=SimpleCNN,
            description="2x (conv-ReLU-maxpool) + 2 dense layers; fast, the classic baseline",
            tags=("scratch", "small"),
            **LAYERS,
        ),
        BackboneSpec(
            name="bn_cnn",
            build=BatchNormCNN,
            description="VGG-style blocks with BatchNorm; global average pooling or a dense head",
            tags=("scratch", "small"),
            **LAYERS,
        ),
    ]
