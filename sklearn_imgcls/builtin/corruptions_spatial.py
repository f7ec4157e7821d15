"""Built-in image corruptions (plugin): occlusion and geometry, at five severities or an exact amount.

Occlusion hides part of each image (a patch, or stripes of inverted rows or
columns, as in MNIST-C); geometry moves it (translate, rotate, scale, shear;
MNIST-C's affine corruptions). Sizes are fractions of the image, so 8x8 and
224x224 images are treated alike. The contract is that of
:class:`~sklearn_imgcls.plugin.specs.CorruptionSpec`: any number of
channels, randomness (per image) only from the generator, same shape and
dtype, values in ``[0, 1]``, severity 0 unchanged.

Exact amounts, for accuracy-versus-shift and accuracy-versus-rotation curves:
``build_corruption("translate", pixels=3)`` moves every image by exactly 3
pixels, ``build_corruption("rotate", degrees=30)`` turns it by exactly 30
degrees (likewise ``scale(factor=...)``, ``shear(degrees=...)``,
``occlusion(area=...)``). The direction is drawn per image (one of the four
axis directions for ``translate``, the sign for ``rotate`` and ``shear``)
unless ``direction=`` fixes it; any severity from 1 up then applies the
amount, and severity 0 still leaves the images unchanged. Whole-pixel
translations and multiples of 90 degrees (on square images) move pixels
exactly; other amounts interpolate bilinearly. Geometry is one batched
``affine_grid``/``grid_sample`` pass with a matrix per image (torchvision's
``affine`` takes one matrix per call); uncovered borders get ``fill``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..plugin.severity import graded_corruption
from ..plugin.hookspecs import hookimpl
from ..plugin.specs import CorruptionSpec

Corrupt = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]

#: severity tables: fractions of the image (side or area), degrees and scale factors
OCCLUSION_AREA = (0.04, 0.09, 0.16, 0.25, 0.36)
STRIPE_FRACTION = (0.1, 0.2, 0.3, 0.4, 0.5)
TRANSLATE_FRACTION = (0.05, 0.1, 0.15, 0.2, 0.25)
ROTATE_DEGREES = (10.0, 20.0, 30.0, 45.0, 60.0)
SCALE_FACTOR = (0.9, 0.8, 0.7, 0.6, 0.5)
SHEAR_DEGREES = (8.0, 16.0, 24.0, 32.0, 40.0)

TRANSLATE_DIRECTIONS = ("random", "right", "left", "down", "up")
TURN_DIRECTIONS = ("random", "counterclockwise", "clockwise")


def _rand(generator: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, returned on ``like``'s device and dtype."""
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


def _check_fill(fill: object, allowed: tuple[str, ...] = ()) -> None:
    if isinstance(fill, str) and fill in allowed:
        return
    if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0.0 <= fill <= 1.0:
        extra = f" or one of {allowed}" if allowed else ""
        raise ValueError(f"fill must be a pixel value in [0, 1]{extra}, got {fill!r}.")


def _check_amount(name: str, value: object, low: float, high: float | None = None, low_open: bool = False) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value < low or (low_open and value == low) or (high is not None and value > high):
        bound = f"({low}, {high}]" if low_open and high is not None else f"> {low}" if low_open else (
            f"[{low}, {high}]" if high is not None else f">= {low}")
        raise ValueError(f"{name} must be a number {bound}, got {value!r}; or None to use the severity table.")


def _increasing(counts: list[int], top: int) -> list[int]:
    """Counts made strictly increasing (from at least 1, at most ``top``), so every severity differs."""
    out: list[int] = []
    for count in counts:
        out.append(min(top, max(count, out[-1] + 1 if out else 1)))
    return out


# -- occlusion ---------------------------------------------------------------------------------------

def occlusion(area: float | None = None, fill: float | str = "noise") -> Corrupt:
    """Hide a rectangle (the image's aspect) at a random place in each image.

    Parameters
    ----------
    area : float or None
        Fraction of the image to hide, in (0, 1], at every severity from 1;
        None: 0.04, 0.09, 0.16, 0.25, 0.36 by severity.
    fill : float or "noise"
        A constant pixel value, or uniform noise drawn per pixel.
    """
    if area is not None:
        _check_amount("area", area, 0.0, 1.0, low_open=True)
    _check_fill(fill, ("noise",))

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = images.shape
        if area is None:
            ph = _increasing([round(math.sqrt(a) * h) for a in OCCLUSION_AREA], h)[severity - 1]
            pw = _increasing([round(math.sqrt(a) * w) for a in OCCLUSION_AREA], w)[severity - 1]
        else:
            ph, pw = max(1, round(math.sqrt(area) * h)), max(1, round(math.sqrt(area) * w))
        top = (_rand(generator, images, n) * (h - ph + 1)).floor()
        left = (_rand(generator, images, n) * (w - pw + 1)).floor()
        rows = torch.arange(h, device=images.device, dtype=images.dtype)[None, :]
        cols = torch.arange(w, device=images.device, dtype=images.dtype)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + ph)  # (N, H)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + pw)
        mask = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (N, 1, H, W)
        patch = _rand(generator, images, *images.shape) if fill == "noise" else torch.full_like(images, float(fill))
        return torch.where(mask, patch, images)

    return graded_corruption("occlusion", apply)


def stripes() -> Corrupt:
    """Invert (1 - x) stripes of rows or columns (chosen per image), covering 0.1 ... 0.5 of the image.

    As MNIST-C's stripe corruption; the stripes are ``side // 28`` pixels
    wide (at least 1) and placed at random per image.
    """

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        masks = []
        for side in (h, w):
            width = max(1, min(h, w) // 28)
            slots = math.ceil(side / width)
            count = _increasing([round(f * slots) for f in STRIPE_FRACTION], slots)[severity - 1]
            ranks = torch.rand(n, slots, generator=generator, device=generator.device).argsort(1).argsort(1)
            chosen = (ranks < count).to(images.device)
            masks.append(chosen[:, torch.arange(side, device=images.device) // width])  # (N, side)
        horizontal = (_rand(generator, images, n) < 0.5)[:, None, None, None]
        mask = torch.where(horizontal, masks[0][:, None, :, None], masks[1][:, None, None, :])
        return torch.where(mask, 1 - images, images)

    return graded_corruption("stripes", apply)


# -- geometry ----------------------------------------------------------------------------------------

def _warp(images: torch.Tensor, linear: torch.Tensor, shift: torch.Tensor, fill: float) -> torch.Tensor:
    """Resample each image at ``input = linear @ output + shift`` (pixel units, centre at the origin)."""
    n, c, h, w = images.shape
    to_unit = torch.tensor([2.0 / w, 2.0 / h], dtype=images.dtype, device=images.device)
    theta = torch.cat([to_unit[:, None] * linear / to_unit[None, :], (to_unit * shift)[..., None]], dim=2)
    grid = F.affine_grid(theta, [n, c + 1, h, w], align_corners=False)
    with_ones = torch.cat([images, torch.ones_like(images[:, :1])], dim=1)
    sampled = F.grid_sample(with_ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    covered = sampled[:, -1:]
    return sampled[:, :-1] + fill * (1 - covered)


def _signs(direction: str, generator: torch.Generator, images: torch.Tensor) -> torch.Tensor:
    """+1 (counterclockwise / to the right) or -1 per image."""
    if direction == "random":
        return torch.where(_rand(generator, images, images.shape[0]) < 0.5, -1.0, 1.0).to(images.dtype)
    return torch.full((images.shape[0],), 1.0 if direction == "counterclockwise" else -1.0,
                      dtype=images.dtype, device=images.device)


def _identity(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(2, dtype=like.dtype, device=like.device).expand(n, 2, 2).clone()


def translate(pixels: float | None = None, direction: str = "random", fill: float = 0.0) -> Corrupt:
    """Move each image along one axis.

    Parameters
    ----------
    pixels : float or None
        The exact distance in pixels at every severity from 1; None: 0.05,
        0.1, 0.15, 0.2, 0.25 of the image's side by severity.
    direction : {"random", "right", "left", "down", "up"}
        "random" draws one of the four per image.
    fill : float
        Value of the uncovered border.
    """
    if pixels is not None:
        _check_amount("pixels", pixels, 0.0)
    _check_choice("direction", direction, TRANSLATE_DIRECTIONS)
    _check_fill(fill)

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        if direction == "random":
            which = (_rand(generator, images, n) * 4).long().clamp(max=3)
        else:
            which = torch.full((n,), TRANSLATE_DIRECTIONS.index(direction) - 1, device=images.device)
        unit = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=images.dtype,
                            device=images.device)[which]  # right, left, down, up
        if pixels is None:
            fraction = TRANSLATE_FRACTION[severity - 1]
            distance = unit.new_tensor([fraction * w, fraction * h])
        else:
            distance = unit.new_tensor([float(pixels), float(pixels)])
        return _warp(images, _identity(n, images), -unit * distance, fill)

    return graded_corruption("translate", apply)


def rotate(degrees: float | None = None, direction: str = "random", fill: float = 0.0) -> Corrupt:
    """Turn each image about its centre.

    Parameters
    ----------
    degrees : float or None
        The exact angle at every severity from 1 (0 to 360); None: 10, 20,
        30, 45, 60 degrees by severity.
    direction : {"random", "counterclockwise", "clockwise"}
        As seen on screen; "random" draws it per image.
    fill : float
        Value of the uncovered corners.
    """
    if degrees is not None:
        _check_amount("degrees", degrees, 0.0, 360.0)
    _check_choice("direction", direction, TURN_DIRECTIONS)
    _check_fill(fill)

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        angle = math.radians(ROTATE_DEGREES[severity - 1] if degrees is None else float(degrees))
        signed = _signs(direction, generator, images) * angle
        cos, sin = torch.cos(signed), torch.sin(signed)
        # rows point down, so turning counterclockwise on screen maps (x, y) to (x cos + y sin, -x sin + y cos);
        # grid_sample needs the inverse (output -> input), the transpose
        linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        return _warp(images, linear, torch.zeros_like(linear[:, 0]), fill)

    return graded_corruption("rotate", apply)


def scale(factor: float | None = None, fill: float = 0.0) -> Corrupt:
    """Zoom each image about its centre.

    Parameters
    ----------
    factor : float or None
        The exact zoom at every severity from 1 (below 1 shrinks, above 1
        enlarges; 0.1 to 10); None: each image is shrunk by 0.9, 0.8, 0.7,
        0.6, 0.5 by severity, or enlarged by its inverse, drawn per image.
    fill : float
        Value of the border a shrunk image leaves.
    """
    if factor is not None:
        _check_amount("factor", factor, 0.1, 10.0)
    _check_fill(fill)

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        n = images.shape[0]
        if factor is None:
            shrink = SCALE_FACTOR[severity - 1]
            zoom = torch.where(_rand(generator, images, n) < 0.5, shrink, 1 / shrink).to(images.dtype)
        else:
            zoom = torch.full((n,), float(factor), dtype=images.dtype, device=images.device)
        linear = _identity(n, images) / zoom[:, None, None]
        return _warp(images, linear, torch.zeros_like(linear[:, 0]), fill)

    return graded_corruption("scale", apply)


def shear(degrees: float | None = None, direction: str = "random", fill: float = 0.0) -> Corrupt:
    """Slant each image horizontally (rows shift in proportion to their height).

    Parameters
    ----------
    degrees : float or None
        The exact shear angle at every severity from 1 (0 to 60); None: 8,
        16, 24, 32, 40 degrees by severity.
    direction : {"random", "counterclockwise", "clockwise"}
        Which way vertical lines lean; "random" draws it per image.
    fill : float
        Value of the uncovered corners.
    """
    if degrees is not None:
        _check_amount("degrees", degrees, 0.0, 60.0)
    _check_choice("direction", direction, TURN_DIRECTIONS)
    _check_fill(fill)

    def apply(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
        angle = math.radians(SHEAR_DEGREES[severity - 1] if degrees is None else float(degrees))
        slope = _signs(direction, generator, images) * math.tan(angle)
        linear = _identity(images.shape[0], images)
        linear[:, 0, 1] = slope  # input x = output x + slope * y: the bottom leans left when slope > 0
        return _warp(images, linear, torch.zeros_like(linear[:, 0]), fill)

    return graded_corruption("shear", apply)


@hookimpl
def sklearn_imgcls_register_corruptions() -> list[CorruptionSpec]:
    """Register the occlusion and geometry corruptions."""
    return [
        CorruptionSpec("occlusion", occlusion, "a random patch hidden by noise, 4% to 36% of the image",
                       family="occlusion"),
        CorruptionSpec("stripes", stripes, "inverted stripes of rows or columns (MNIST-C)", family="occlusion"),
        CorruptionSpec("translate", translate, "shift along an axis (or by pixels=)", family="geometry"),
        CorruptionSpec("rotate", rotate, "rotation about the centre (or by degrees=)", family="geometry"),
        CorruptionSpec("scale", scale, "zoom in or out about the centre (or by factor=)", family="geometry"),
        CorruptionSpec("shear", shear, "horizontal shear (or by degrees=)", family="geometry"),
    ]
