"""Built-in batch augmentations (plugin): flips and padded random crops.

Each augmentation works on a whole float batch ``(N, C, H, W)`` at once and
draws its randomness from the generator it is given, so training is
repeatable under ``random_state``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..hookspecs import hookimpl
from ..specs import AugmentationSpec

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _check_probability(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")


def _flip(dim: int, p: float) -> Augment:
    _check_probability(p)

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = torch.rand(images.shape[0], generator=generator) < p
        out = images.clone()
        out[chosen] = images[chosen].flip(dim)
        return out

    return augment


def flip_h(p: float = 0.5) -> Augment:
    """Mirror each image left-right with probability ``p``."""
    return _flip(-1, p)


def flip_v(p: float = 0.5) -> Augment:
    """Mirror each image top-bottom with probability ``p``."""
    return _flip(-2, p)


def random_crop(padding: int = 2, fill: float = 0.0) -> Augment:
    """Pad each image by ``padding`` pixels and crop it back at a random offset.

    Parameters
    ----------
    padding : int
        Largest shift in pixels, in each direction.
    fill : float
        Value of the padded border.
    """
    if int(padding) != padding or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}.")
    padding = int(padding)

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if padding == 0:
            return images
        n, c, h, w = images.shape
        padded = F.pad(images, (padding,) * 4, value=fill)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (torch.arange(h)[None, :] + dy[:, None])[:, None, :, None]
        cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, None, :]
        batch = torch.arange(n)[:, None, None, None]
        channel = torch.arange(c)[None, :, None, None]
        return padded[batch, channel, rows, cols]

    return augment


@hookimpl
def register_augmentations() -> list[AugmentationSpec]:
    """Register ``flip_h``, ``flip_v`` and ``random_crop``."""
    return [
        AugmentationSpec("flip_h", flip_h, "horizontal flip with probability p"),
        AugmentationSpec("flip_v", flip_v, "vertical flip with probability p"),
        AugmentationSpec("random_crop", random_crop, "shift by up to `padding` pixels"),
    ]
