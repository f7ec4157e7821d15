"""Built-in batch augmentations (plugin): flips, crops, affine warps, colour, noise, erasing.

Each augmentation works on a whole float batch ``(N, C, H, W)`` at once, with
its own random parameters per image, and draws its randomness from the
generator it is given, so training is repeatable under ``random_state``.
The random numbers are drawn on the CPU and moved to the batch's device, so
a batch held on a GPU is augmented there, with the same draws as on the CPU.
Geometric warps (rotation, translation, scaling) share one vectorised
``affine_grid``/``grid_sample`` pass; photometric changes stay within the
batch's value range, so an augmented batch never leaves the range the
network was trained on.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..plugin.hookspecs import hookimpl
from ..plugin.specs import AugmentationSpec

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _check_probability(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")


def _flip(dim: int, p: float) -> Augment:
    _check_probability(p)

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = _on(images, torch.rand(images.shape[0], generator=generator) < p)
        return torch.where(chosen.view(-1, *([1] * (images.ndim - 1))), images.flip(dim), images)

    return augment


def flip_h(p: float = 0.5) -> Augment:
    """Mirror each image left-right with probability ``p``."""
    return _flip(-1, p)


def flip_v(p: float = 0.5) -> Augment:
    """Mirror each image top-bottom with probability ``p``."""
    return _flip(-2, p)


def random_crop(padding: float = 2, fill: float = 0.0) -> Augment:
    """Pad each image by ``padding`` pixels and crop it back at a random offset.

    Parameters
    ----------
    padding : int or float
        Largest shift in each direction: a number of pixels (an integer), or
        a fraction of the image's shorter side (a float strictly between 0
        and 1, rounded to whole pixels), which suits images of any size.
    fill : float
        Value of the padded border.
    """
    fraction = isinstance(padding, float) and 0 < padding < 1
    if not fraction and (int(padding) != padding or padding < 0):
        raise ValueError(
            f"padding must be a non-negative number of pixels or a fraction in (0, 1), got {padding!r}."
        )

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        pixels = round(padding * min(h, w)) if fraction else int(padding)
        if pixels == 0:
            return images
        padded = F.pad(images, (pixels,) * 4, value=fill)
        dy = _on(images, torch.randint(0, 2 * pixels + 1, (n,), generator=generator))
        dx = _on(images, torch.randint(0, 2 * pixels + 1, (n,), generator=generator))
        device = images.device
        rows = (torch.arange(h, device=device)[None, :] + dy[:, None])[:, None, :, None]
        cols = (torch.arange(w, device=device)[None, :] + dx[:, None])[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        channel = torch.arange(c, device=device)[None, :, None, None]
        return padded[batch, channel, rows, cols]

    return augment


def _on(images: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """Random numbers drawn on the CPU (from the estimator's generator), moved to where ``images`` are.

    Drawing on the CPU keeps one random stream whatever the device: a batch
    augmented on a GPU gets the same shifts, angles and boxes as on the CPU.
    """
    return drawn.to(images.device, non_blocking=True)


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _warp(images: torch.Tensor, theta: torch.Tensor, fill: float) -> torch.Tensor:
    """Resample ``images`` through per-image affine maps ``theta`` (N, 2, 3), filling outside."""
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    warped = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped + fill


def rotate(degrees: float = 15.0, fill: float = 0.0) -> Augment:
    """Rotate each image by a random angle in ``[-degrees, degrees]``.

    Parameters
    ----------
    degrees : float
        Largest rotation, in degrees.
    fill : float
        Value of the corners the rotation uncovers.
    """
    if degrees < 0:
        raise ValueError(f"degrees must be >= 0, got {degrees!r}.")

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        angle = torch.deg2rad(_uniform(images.shape[0], -degrees, degrees, generator))
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        return _warp(images, theta, fill)

    return augment


def translate(fraction: float = 0.1, fill: float = 0.0) -> Augment:
    """Shift each image by up to ``fraction`` of its width and height.

    Parameters
    ----------
    fraction : float
        Largest shift as a fraction of the image size, in ``[0, 1)``.
    fill : float
        Value of the uncovered border.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}.")

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = images.shape[0]
        shift = _uniform(2 * n, -2 * fraction, 2 * fraction, generator).view(n, 2)  # grid units span 2
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = shift
        return _warp(images, theta, fill)

    return augment


def random_resized_crop(scale: tuple[float, float] = (0.6, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Augment:
    """Crop a random area and aspect ratio of each image and stretch it back to full size.

    Parameters
    ----------
    scale : (float, float)
        Range of the crop's area as a fraction of the image.
    ratio : (float, float)
        Range of the crop's aspect ratio (width / height), drawn log-uniformly.
    """
    low, high = scale
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale!r}.")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio!r}.")
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = images.shape[0]
        area = _uniform(n, low, high, generator)
        aspect = torch.exp(_uniform(n, *log_ratio, generator))
        width = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image
        height = torch.sqrt(area / aspect).clamp(max=1.0)
        centre_x = (1 - width) * (2 * torch.rand(n, generator=generator) - 1)
        centre_y = (1 - height) * (2 * torch.rand(n, generator=generator) - 1)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = width, height
        theta[:, 0, 2], theta[:, 1, 2] = centre_x, centre_y
        return _warp(images, theta, 0.0)

    return augment


def _batch_range(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's smallest and largest value, as 0-d tensors on its device (no wait for a GPU)."""
    return images.amin(), images.amax()


def color_jitter(brightness: float = 0.2, contrast: float = 0.2) -> Augment:
    """Scale each image's brightness and contrast by random factors.

    Brightness multiplies the image by a factor in ``[1 - brightness, 1 +
    brightness]``; contrast blends it with its mean by a factor in ``[1 -
    contrast, 1 + contrast]``. Results are clipped to the batch's value range.
    """
    for name, value in (("brightness", brightness), ("contrast", contrast)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}.")

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = images.shape[0]
        low, high = _batch_range(images)
        b = _on(images, _uniform(n, 1 - brightness, 1 + brightness, generator).view(n, 1, 1, 1))
        c = _on(images, _uniform(n, 1 - contrast, 1 + contrast, generator).view(n, 1, 1, 1))
        out = images * b
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        return torch.clamp((out - mean) * c + mean, low, high)

    return augment


def gaussian_noise(std: float = 0.05) -> Augment:
    """Add Gaussian pixel noise of standard deviation ``std`` (in image units), clipped to the batch's range."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std!r}.")

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        low, high = _batch_range(images)
        noise = _on(images, torch.randn(images.shape, generator=generator, dtype=images.dtype))
        return torch.clamp(images + std * noise, low, high)

    return augment


def random_erasing(p: float = 0.5, scale: tuple[float, float] = (0.02, 0.2), value: float = 0.0) -> Augment:
    """Blank a random rectangle of each image with probability ``p`` (Zhong et al., 2020).

    Parameters
    ----------
    p : float
        Probability that an image gets a rectangle.
    scale : (float, float)
        Range of the rectangle's area as a fraction of the image.
    value : float
        Value written into the rectangle.
    """
    _check_probability(p)
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale!r}.")

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        chosen = torch.rand(n, generator=generator) < p
        side = torch.sqrt(_uniform(n, scale[0], scale[1], generator))
        eh, ew = (side * h).round().clamp(min=1), (side * w).round().clamp(min=1)
        top = (torch.rand(n, generator=generator) * (h - eh + 1)).floor()
        left = (torch.rand(n, generator=generator) * (w - ew + 1)).floor()
        chosen, eh, ew, top, left = (_on(images, drawn) for drawn in (chosen, eh, ew, top, left))
        rows = torch.arange(h, device=images.device).view(1, h, 1)
        cols = torch.arange(w, device=images.device).view(1, 1, w)
        inside = (
            (rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1))
            & chosen.view(n, 1, 1)
        )
        return images.masked_fill(inside.unsqueeze(1), value)

    return augment


@hookimpl
def sklearn_imgcls_register_augmentations() -> list[AugmentationSpec]:
    """Register the per-image batch augmentations of this module."""
    return [
        AugmentationSpec("flip_h", flip_h, "horizontal flip with probability p"),
        AugmentationSpec("flip_v", flip_v, "vertical flip with probability p"),
        AugmentationSpec("random_crop", random_crop, "pad and crop back: integer shift by up to `padding` pixels"),
        AugmentationSpec("rotate", rotate, "rotation by up to +/- `degrees`"),
        AugmentationSpec("translate", translate, "shift by up to `fraction` of the size"),
        AugmentationSpec("random_resized_crop", random_resized_crop, "crop of 60-100% area stretched back (scaling)"),
        AugmentationSpec("color_jitter", color_jitter, "random brightness and contrast factors"),
        AugmentationSpec("gaussian_noise", gaussian_noise, "additive Gaussian pixel noise"),
        AugmentationSpec("random_erasing", random_erasing, "blank a random rectangle (Zhong et al., 2020)"),
    ]
