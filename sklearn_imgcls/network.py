"""The module every estimator trains: input scaling and normalisation + backbone."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ImageNetwork"]


class ImageNetwork(nn.Module):
    """Normalise raw images, then run the backbone.

    ``uint8`` inputs are scaled to ``[0, 1]`` first, so a model fitted on
    ``uint8`` images predicts the same on their ``float`` ``[0, 1]`` copies.
    The per-channel ``mean`` and ``std`` are buffers: they travel with the
    weights, through pickling, ``state_dict`` and export.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps normalised ``(N, C, H, W)`` images to logits.
    mean, std : torch.Tensor
        One value per channel.
    """

    def __init__(self, backbone: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Module API
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        return self.backbone((x - self.mean) / self.std)
