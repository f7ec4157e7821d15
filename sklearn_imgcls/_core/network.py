"""The module every estimator trains: input adaptation and normalisation + backbone."""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PRECISIONS", "ImageNetwork", "autocast_dtype", "float32_compute", "module_device", "resize_images",
           "to_float_images"]

#: accepted values of the estimators' ``precision`` parameter
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@functools.lru_cache(maxsize=None)
def _cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively here (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(precision: str, device_type: str) -> torch.dtype | None:
    """The autocast dtype ``precision`` means on ``device_type``, None for float32.

    ``"auto"`` picks bfloat16 where the hardware computes it natively (CUDA
    cards that support it; CPUs with AVX512-BF16 or AMX), float16 on older
    CUDA cards (training then scales the loss with a
    :class:`torch.amp.GradScaler`) and float32 elsewhere. ``"fp16"`` is
    honoured on CUDA only (float16 on a CPU is slower than float32),
    ``"bf16"`` everywhere.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16 if device_type == "cuda" else None
    if device_type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device_type == "cpu":
        return torch.bfloat16 if _cpu_has_fast_bf16() else None
    return None


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters live (CPU for a module without parameters)."""
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """A float32 batch in the units the networks use: uint8 pixels scaled to ``[0, 1]``, floats as they are.

    The one uint8 -> float conversion: :class:`ImageNetwork` applies it to
    its input, and so does everything that handles images outside a network
    (augmentation, attacks, decoding of mixed bit depths, plots).
    """
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


def resize_images(images: torch.Tensor, size: tuple[int, int], *, antialias: bool) -> torch.Tensor:
    """Bilinear resize of an ``(N, C, H, W)`` float batch to ``size`` = ``(H, W)`` (corners not aligned).

    ``antialias`` low-pass filters when shrinking (as PIL does); when
    enlarging it changes values only by float rounding (about 1e-7).
    """
    return F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False, antialias=antialias)


@contextlib.contextmanager
def float32_compute(module: nn.Module) -> Iterator[nn.Module]:
    """Run an :class:`ImageNetwork` in float32 inside the block, whatever its ``precision``.

    For what needs exact activations and gradients rather than speed:
    adversarial attacks, Grad-CAM, ONNX export.
    """
    previous = getattr(module, "precision", None)
    if previous is not None:
        module.precision = "fp32"
    try:
        yield module
    finally:
        if previous is not None:
            module.precision = previous


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
    precision : str
        ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"auto"`` (see
        :func:`autocast_dtype`): the backbone runs under
        :func:`torch.autocast` with that dtype; logits are returned as float32.
    channels_last : bool
        Keep the backbone's convolution weights and inputs channels-last
        (NHWC memory layout), which oneDNN and cuDNN convolutions run faster.
    compile : bool
        Run the backbone through :func:`torch.compile` (compiled lazily on
        the first call; the compiled function is not pickled).

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
        precision: str = "fp32",
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.in_channels = in_channels
        self.input_size = tuple(input_size) if input_size is not None else None
        self.set_compute(precision, channels_last, compile)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Module API
        x = to_float_images(x)
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            x = x.expand(-1, self.in_channels, -1, -1) if x.shape[1] == 1 else x[:, : self.in_channels]
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            x = resize_images(x, self.input_size, antialias=True)
        x = (x - self.mean) / self.std
        if getattr(self, "channels_last", False) and x.ndim == 4:  # absent from networks pickled by older versions
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = autocast_dtype(getattr(self, "precision", "fp32"), x.device.type)
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if not getattr(self, "compile", False):
                logits = self.backbone(x)
            elif self._compiled is not None:
                logits = self._compiled(x)
            else:
                logits = self._compile_and_call(x)
        return logits.float()

    def set_compute(self, precision: str = "fp32", channels_last: bool = False, compile: bool = False) -> "ImageNetwork":
        """Set how the backbone computes (see the class parameters); returns self.

        ``channels_last`` also converts the backbone's 4-D weights, which is
        what makes oneDNN pick its fast NHWC kernels.
        """
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        object.__setattr__(self, "_compiled", None)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.backbone.to(memory_format=layout)
        return self

    def _compile_and_call(self, x: torch.Tensor) -> torch.Tensor:
        """Compile the backbone at its first call; run it uncompiled (with a warning) if compiling fails."""
        compiled = torch.compile(self.backbone)
        try:
            logits = compiled(x)
        except Exception as exc:  # inductor fails in many ways (no C++ compiler, unsupported ops)
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {reason}); the network runs uncompiled. "
                "Install a C++ compiler (e.g. apt-get install g++) or set compile=False.",
                RuntimeWarning,
                stacklevel=3,
            )
            self.compile = False
            return self.backbone(x)
        object.__setattr__(self, "_compiled", compiled)  # a plain attribute, not a submodule: kept out of state_dict
        return logits

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_compiled": None}

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
