"""Built-in searched augmentation policies (plugin): RandAugment, TrivialAugment and AugMix.

These wrap :class:`torchvision.transforms.v2.RandAugment`,
:class:`~torchvision.transforms.v2.TrivialAugmentWide` and
:class:`~torchvision.transforms.v2.AugMix`. torchvision draws one set of
operations per call, so the batch is transformed image by image (each image
gets its own operations), on one torch thread (threads only add overhead to
ops on one small image: AugMix on a 28x28 image took 10 ms with 2 threads,
1 ms with one); this still costs about a millisecond per small image, far
more than the vectorised augmentations. torchvision draws from torch's
global generator, so each batch runs under :func:`torch.random.fork_rng`
seeded from the generator the estimator passes: training stays repeatable
and the global state is left alone. The policies' colour operations need
images in ``[0, 1]`` with 1 or 3 channels: uint8 input (scaled by the
estimator) or floats in that range.
"""

from __future__ import annotations

from typing import Callable

import math
import numbers

import torch
from torchvision.transforms import v2

from .._core.network import to_float_images
from .._core.threads import torch_threads
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
        with torch.random.fork_rng(devices=[]), torch_threads(1):
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


def _check_int(name: str, value: object, low: int, high: int | None = None, also: tuple[int, ...] = ()) -> None:
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not integral or (value not in also and (value < low or (high is not None and value > high))):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        extra = f" (or {', '.join(map(str, also))})" if also else ""
        raise ValueError(f"augmix: {name} must be an integer {allowed}{extra}, got {value!r}.")


def augmix(severity: int = 3, width: int = 3, depth: int = -1, alpha: float = 1.0, all_ops: bool = False) -> Augment:
    """AugMix (Hendrycks et al., 2020): each image blended with ``width`` chains of random operations.

    torchvision's :class:`~torchvision.transforms.v2.AugMix`, per image, seeded
    from the generator (see the module docstring). The mixing only: the
    paper's Jensen-Shannon consistency loss between clean and augmented
    views is not part of it.

    Parameters
    ----------
    severity : int
        Strength of the operations, 1 to 10.
    width : int
        Number of augmentation chains mixed (at least 1).
    depth : int
        Operations per chain, at least 1; -1 draws 1 to 3 per chain.
    alpha : float
        Concentration of the Dirichlet (chain weights) and Beta (clean vs
        mixed) distributions; > 0.
    all_ops : bool
        Also use the operations that overlap with the corruptions of
        ImageNet-C and :func:`~sklearn_imgcls.list_corruptions` (contrast,
        colour, brightness, sharpness). False, as in the paper, keeps
        corruption accuracy a measure of robustness to unseen corruptions.
    """
    _check_int("severity", severity, 1, 10)
    _check_int("width", width, 1)
    _check_int("depth", depth, 1, also=(-1,))
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"augmix: alpha must be a positive number, got {alpha!r}.")
    if not isinstance(all_ops, bool):
        raise ValueError(f"augmix: all_ops must be True or False, got {all_ops!r}.")
    policy = v2.AugMix(severity=int(severity), mixture_width=int(width), chain_depth=int(depth), alpha=float(alpha),
                       all_ops=all_ops)
    return _per_image(policy, "augmix")


@hookimpl
def sklearn_imgcls_register_augmentations() -> list[AugmentationSpec]:
    """Register ``randaugment``, ``trivialaugment`` and ``augmix``."""
    return [
        AugmentationSpec("randaugment", randaugment, "torchvision RandAugment, per image (slow; 1 or 3 channels)"),
        AugmentationSpec("trivialaugment", trivialaugment, "torchvision TrivialAugmentWide, per image (slow)"),
        AugmentationSpec("augmix", augmix, "torchvision AugMix (severity, width, depth, alpha), per image (slow; "
                         "1 or 3 channels)"),
    ]
