"""Test-time augmentation: fixed views of a batch whose predictions are averaged.

The views are deterministic (mirrors and small edge-replicating shifts), so
``predict_proba`` stays repeatable. They work on uint8 and float batches alike.
"""

from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["shift", "test_time_views"]


def shift(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift ``images`` (N, C, H, W) by ``dy`` rows and ``dx`` columns, repeating the edge pixels."""
    h, w = images.shape[-2:]
    rows = (torch.arange(h, device=images.device) - dy).clamp_(0, h - 1)
    cols = (torch.arange(w, device=images.device) - dx).clamp_(0, w - 1)
    return images.index_select(-2, rows).index_select(-1, cols)


def test_time_views(images: torch.Tensor, views: list[str]) -> Iterator[torch.Tensor]:
    """Yield the requested views of ``images`` (the original is not among them).

    Parameters
    ----------
    images : torch.Tensor
        A batch ``(N, C, H, W)``.
    views : list of str
        ``"flip_h"``, ``"flip_v"`` and/or ``"shift"`` (four shifts of
        ``max(1, size // 16)`` pixels: up, down, left, right).
    """
    for view in views:
        if view == "flip_h":
            yield images.flip(-1)
        elif view == "flip_v":
            yield images.flip(-2)
        elif view == "shift":
            step = max(1, min(images.shape[-2:]) // 16)
            for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step)):
                yield shift(images, dy, dx)
        else:
            raise ValueError(f"Unknown test-time view {view!r}.")
