"""The skorch net under Hugging Face Accelerate (imported only when ``accelerator=`` is used)."""

from __future__ import annotations

from skorch.hf import AccelerateMixin

from .skorch_net import ImageNeuralNet

__all__ = ["AcceleratedImageNeuralNet"]


class AcceleratedImageNeuralNet(AccelerateMixin, ImageNeuralNet):
    """:class:`~sklearn_imgcls.skorch_net.ImageNeuralNet` trained through an ``accelerate.Accelerator``."""
