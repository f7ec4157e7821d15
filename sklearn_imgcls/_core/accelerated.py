"""The skorch net under Hugging Face Accelerate (imported only when ``accelerator=`` is used)."""

from __future__ import annotations

from skorch.hf import AccelerateMixin

from .net import ImageNeuralNet

__all__ = ["AcceleratedImageNeuralNet"]


class AcceleratedImageNeuralNet(AccelerateMixin, ImageNeuralNet):
    """:class:`~sklearn_imgcls._core.net.ImageNeuralNet` trained through an ``accelerate.Accelerator``."""
