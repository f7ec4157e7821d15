"""The module every estimator trains: input adaptation and normalisation + backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ImageNetwork", "module_device"]


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters live (CPU for a module without parameters)."""
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


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
        One value per channel (of the backbone's input).
    in_channels : int or None
        Channels the backbone expects; one-channel images are repeated to
        match (grayscale into an RGB network). None keeps the input's.
    input_size : tuple of int or None
        ``(H, W)`` the backbone expects; images are resized (bilinear, with
        antialiasing) when they differ. None keeps the input's size.

    Notes
    -----
    BatchNorm layers whose parameters are all frozen (``requires_grad`` is
    False) stay in evaluation mode when the network trains, so freezing a
    pretrained part also freezes its running statistics.
    """

    def __init__(
        self,
        backbone: nn.Module,
        mean: torch.Tensor,
        std: torch.Tensor,
        in_channels: int | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.in_channels = in_channels
        self.input_size = tuple(input_size) if input_size is not None else None
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Module API
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            x = x.expand(-1, self.in_channels, -1, -1) if x.shape[1] == 1 else x[:, : self.in_channels]
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return self.backbone((x - self.mean) / self.std)

    def train(self, mode: bool = True) -> "ImageNetwork":
        """Set training mode, keeping fully frozen BatchNorm layers in eval mode."""
        super().train(mode)
        if mode:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    parameters = list(module.parameters(recurse=False))
                    if parameters and not any(p.requires_grad for p in parameters):
                        module.eval()
        return self
