"""Built-in image corruptions (plugin): noise, blur and digital artefacts at five severities.

Modelled on ImageNet-C (Hendrycks and Dietterich, 2019) and MNIST-C (Mu and
Gilmer, 2019); their severity tables are followed where they transfer, and
amounts measured in pixels (blur widths, pixel block sizes) scale with the
image, so 8x8 digits and 224x224 photographs are both corrupted visibly and
never beyond recognition at severity 1. Every corruption takes a float batch
``(N, C, H, W)`` in ``[0, 1]`` with any number of channels, draws its
randomness (per image) from the generator it is given, and returns a new
batch of the same shape and dtype in ``[0, 1]``; severity 0 returns the
images unchanged (see :class:`~sklearn_imgcls.plugin.specs.CorruptionSpec`).
The deterministic ones carry the tag ``"deterministic"``.

Occlusion and geometry live in :mod:`sklearn_imgcls.builtin.corruptions_spatial`.
"""

from __future__ import annotations

import io
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from ..plugin.severity import graded_corruption
from ..plugin.hookspecs import hookimpl
from ..plugin.specs import CorruptionSpec

Corrupt = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]

#: ImageNet-C's severity tables (noise levels, JPEG qualities, contrast and brightness amounts)
GAUSSIAN_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
JPEG_QUALITY = (25, 18, 15, 10, 7)
PIXELATE_FRACTION = (0.6, 0.5, 0.4, 0.3, 0.25)
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
#: blur sizes in pixels for a 32x32 image (CIFAR-10-C's scale); multiplied by sqrt(side / 32), which
#: gives about ImageNet-C's sigmas at 224x224 and still a visible blur at 8x8
BLUR_SIGMA_AT_32 = (0.5, 0.75, 1.0, 1.25, 1.5)
MOTION_LENGTH_AT_32 = (2.0, 3.0, 4.5, 6.0, 8.0)


def _size_factor(images: torch.Tensor) -> float:
    return math.sqrt(min(images.shape[-2:]) / 32)


def _rand(generator: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, returned on ``like``'s device and dtype."""
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


# -- noise -------------------------------------------------------------------------------------------

def gaussian_noise() -> Corrupt:
    """Add Gaussian noise of standard deviation 0.08, 0.12, 0.18, 0.26, 0.38 (ImageNet-C)."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=generator, device=generator.device)
        return images + GAUSSIAN_STD[severity - 1] * noise.to(images.device, images.dtype)

    return graded_corruption("gaussian_noise", apply)


def shot_noise() -> Corrupt:
    """Poisson (photon) noise: each pixel counts Poisson(x * p) photons of p = 60, 25, 12, 5, 3 (ImageNet-C)."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        photons = SHOT_PHOTONS[severity - 1]
        rate = (images.clamp(0, 1) * photons).to(generator.device, torch.float32)
        return torch.poisson(rate, generator=generator).to(images.device, images.dtype) / photons

    return graded_corruption("shot_noise", apply)


def impulse_noise() -> Corrupt:
    """Salt-and-pepper noise: a fraction 0.03, 0.06, 0.09, 0.17, 0.27 of the values set to 0 or 1 (ImageNet-C)."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        hit = _rand(generator, images, *images.shape) < IMPULSE_AMOUNT[severity - 1]
        salt = (_rand(generator, images, *images.shape) < 0.5).to(images.dtype)
        return torch.where(hit, salt, images)

    return graded_corruption("impulse_noise", apply)


# -- blur --------------------------------------------------------------------------------------------

def gaussian_blur() -> Corrupt:
    """Gaussian blur of sigma (0.5, 0.75, 1, 1.25, 1.5) x sqrt(side / 32) pixels (torchvision's gaussian_blur)."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        sigma = BLUR_SIGMA_AT_32[severity - 1] * _size_factor(images)
        half = min(math.ceil(3 * sigma), min(images.shape[-2:]) - 1)  # reflect padding needs half < side
        if half < 1:
            return images.clone()
        return TF.gaussian_blur(images, [2 * half + 1] * 2, [sigma, sigma])

    return graded_corruption("gaussian_blur", apply)


def _line_kernels(length: float, angles: torch.Tensor) -> torch.Tensor:
    """``(N, k, k)`` kernels, each a line of ``length`` pixels through the centre at its angle (radians)."""
    half = length / 2
    size = 2 * math.ceil(half) + 1
    steps = torch.linspace(-half, half, max(2, math.ceil(4 * length) + 1), dtype=angles.dtype, device=angles.device)
    xs = steps[None, :] * torch.cos(angles)[:, None]  # (N, P)
    ys = -steps[None, :] * torch.sin(angles)[:, None]
    grid = torch.arange(size, dtype=angles.dtype, device=angles.device) - size // 2
    wx = (1 - (xs[..., None] - grid).abs()).clamp_min(0)  # bilinear splat of each point: (N, P, k)
    wy = (1 - (ys[..., None] - grid).abs()).clamp_min(0)
    kernels = torch.einsum("npi,npj->nij", wy, wx)
    return kernels / kernels.sum((1, 2), keepdim=True)


def motion_blur() -> Corrupt:
    """Blur along a line of (2, 3, 4.5, 6, 8) x sqrt(side / 32) pixels at a random angle in [-45, 45] degrees
    per image (ImageNet-C's angles); one grouped convolution for the batch."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        angles = (_rand(generator, images, n) - 0.5) * (math.pi / 2)
        kernels = _line_kernels(MOTION_LENGTH_AT_32[severity - 1] * _size_factor(images), angles)
        pad = kernels.shape[-1] // 2
        padded = F.pad(images, (pad,) * 4, mode="replicate").reshape(1, n * c, h + 2 * pad, w + 2 * pad)
        weight = kernels.repeat_interleave(c, dim=0)[:, None]  # (N*C, 1, k, k)
        return F.conv2d(padded, weight, groups=n * c).reshape(n, c, h, w)

    return graded_corruption("motion_blur", apply)


# -- digital -----------------------------------------------------------------------------------------

def _jpeg_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Each uint8 image of ``(M, H, W)`` (greyscale) or ``(M, H, W, 3)`` (RGB) saved as JPEG and read back."""
    out = np.empty_like(pixels)
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[i] = np.asarray(decoded)
    return out


def jpeg() -> Corrupt:
    """JPEG compression at quality 25, 18, 15, 10, 7 (ImageNet-C), with Pillow's encoder as ImageNet-C used.

    3-channel batches are compressed as RGB; any other channel count
    channel by channel as greyscale. (torchvision's ``jpeg`` goes through
    its image encoding, deprecated since torchvision 0.29.)
    """

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        as_uint8 = images.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        quality = JPEG_QUALITY[severity - 1]
        if c == 3:
            out = _jpeg_round_trip(as_uint8.transpose(0, 2, 3, 1), quality).transpose(0, 3, 1, 2)
        else:
            out = _jpeg_round_trip(as_uint8.reshape(n * c, h, w), quality).reshape(n, c, h, w)
        return torch.from_numpy(np.ascontiguousarray(out)).to(images.device, images.dtype) / 255

    return graded_corruption("jpeg", apply)


def _decreasing_sizes(side: int, fractions: tuple[float, ...]) -> list[int]:
    """``round(f * side)`` for each fraction, made strictly decreasing (at least 1) so every severity differs."""
    sizes: list[int] = []
    for fraction in fractions:
        size = max(1, round(fraction * side))
        sizes.append(max(1, min(size, sizes[-1] - 1)) if sizes else size)
    return sizes


def pixelate() -> Corrupt:
    """Shrink to 0.6, 0.5, 0.4, 0.3, 0.25 of the side (ImageNet-C; each severity at least one pixel coarser
    than the last) with an antialiased resize, and blow the pixels back up as blocks."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        h, w = images.shape[-2:]
        small = (_decreasing_sizes(h, PIXELATE_FRACTION)[severity - 1],
                 _decreasing_sizes(w, PIXELATE_FRACTION)[severity - 1])
        # an antialiased shrink and centred blocks ("nearest-exact"): plain pooling and "nearest" alias on
        # sizes that do not divide the side, and then a milder severity can change the image more
        shrunk = F.interpolate(images, size=small, mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(shrunk, size=(h, w), mode="nearest-exact")

    return graded_corruption("pixelate", apply)


def contrast() -> Corrupt:
    """Pull every pixel towards the image's mean, keeping 0.4, 0.3, 0.2, 0.1, 0.05 of the contrast (ImageNet-C)."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        mean = images.mean((1, 2, 3), keepdim=True)
        return (images - mean) * CONTRAST_FACTOR[severity - 1] + mean

    return graded_corruption("contrast", apply)


def brightness() -> Corrupt:
    """Raise the HSV value (the brightest channel) by 0.1 ... 0.5, keeping hue and saturation (ImageNet-C);
    on one channel, add the amount. Black pixels become grey."""

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        shift = BRIGHTNESS_SHIFT[severity - 1]
        value = images.amax(1, keepdim=True)
        raised = (value + shift).clamp(max=1.0)
        scaled = images * (raised / value.clamp_min(1e-12))
        return torch.where(value > 1e-12, scaled, torch.full_like(images, shift))

    return graded_corruption("brightness", apply)


@hookimpl
def sklearn_imgcls_register_corruptions() -> list[CorruptionSpec]:
    """Register the noise, blur and digital corruptions."""
    deterministic = ("deterministic",)
    return [
        CorruptionSpec("gaussian_noise", gaussian_noise, "additive Gaussian noise (ImageNet-C levels)",
                       family="noise"),
        CorruptionSpec("shot_noise", shot_noise, "Poisson photon noise (ImageNet-C levels)", family="noise"),
        CorruptionSpec("impulse_noise", impulse_noise, "salt-and-pepper noise (ImageNet-C levels)",
                       family="noise"),
        CorruptionSpec("gaussian_blur", gaussian_blur, "Gaussian (defocus-like) blur scaled to the image size",
                       deterministic, family="blur"),
        CorruptionSpec("motion_blur", motion_blur, "blur along a line at a random angle per image",
                       family="blur"),
        CorruptionSpec("jpeg", jpeg, "JPEG compression at falling quality (Pillow)", deterministic,
                       family="digital"),
        CorruptionSpec("pixelate", pixelate, "block averaging to a coarser grid and back", deterministic,
                       family="digital"),
        CorruptionSpec("contrast", contrast, "contrast reduced towards the image mean", deterministic,
                       family="digital"),
        CorruptionSpec("brightness", brightness, "brightness (HSV value) raised", deterministic,
                       family="digital"),
    ]
