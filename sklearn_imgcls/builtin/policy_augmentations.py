"""Built-in searched augmentation policies (plugin): RandAugment and TrivialAugment.

These wrap :class:`torchvision.transforms.v2.RandAugment` and
:class:`~torchvision.transforms.v2.TrivialAugmentWide`. torchvision draws one
operation per call, so the batch is transformed image by image (each image
gets its own operations); this costs about a millisecond per small image on
one CPU core, far more than the vectorised augmentations. The policies'
colour operations need images in ``[0, 1]`` with 1 or 3 channels: uint8
input (scaled by the estimator) or floats in that range.
"""

from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms import v2

from .._core.network import to_float_images
from ..plugin.hookspecs import hookimpl
from ..plugin.specs import AugmentationSpec

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _per_image(policy: Callable[[torch.Tensor], torch.Tensor], name: str) -> Augment:
    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if images.shape[1] not in (1, 3):
            raise ValueError(
                f"{name} works on 1- or 3-channel images, got {images.shape[1]} channels; "
                "use the per-image augmentations (rotate, translate, color_jitter, ...) instead."
            )
        low, high = float(images.min()), float(images.max())
        if low < -1e-6 or high > 1 + 1e-6:
            raise ValueError(
                f"{name} needs pixel values in [0, 1], got [{low:.3g}, {high:.3g}]; pass uint8 images "
                "or scale floats to [0, 1] before fitting."
            )
        as_uint8 = images.mul(255).round_().to(torch.uint8)
        # torchvision draws from torch's global generator: seed it from ours so training stays repeatable.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = torch.stack([policy(image) for image in as_uint8])
        return to_float_images(out)

    return augment


def randaugment(num_ops: int = 2, magnitude: int = 9) -> Augment:
    """RandAugment (Cubuk et al., 2020): ``num_ops`` random operations of strength ``magnitude`` (0-30)."""
    return _per_image(v2.RandAugment(num_ops=num_ops, magnitude=magnitude), "randaugment")


def trivialaugment() -> Augment:
    """TrivialAugment (Müller and Hutter, 2021): one random operation of random strength per image."""
    return _per_image(v2.TrivialAugmentWide(), "trivialaugment")


@hookimpl
def sklearn_imgcls_register_augmentations() -> list[AugmentationSpec]:
    """Register ``randaugment`` and ``trivialaugment``."""
    return [
        AugmentationSpec("randaugment", randaugment, "torchvision RandAugment, per image (slow; 1 or 3 channels)"),
        AugmentationSpec("trivialaugment", trivialaugment, "torchvision TrivialAugmentWide, per image (slow)"),
    ]
