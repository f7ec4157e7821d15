"""The skorch net under Hugging Face Accelerate (imported only when ``accelerator=`` is used)."""

from __future__ import annotations

from skorch.hf import AccelerateMixin

from .net import ImageNeuralNet

__all__ = ["AcceleratedImageNeuralNet", "accelerated_net_class"]


class AcceleratedImageNeuralNet(AccelerateMixin, ImageNeuralNet):
    """:class:`~sklearn_imgcls._core.net.ImageNeuralNet` trained through an ``accelerate.Accelerator``."""


def accelerated_net_class() -> type:
    """:class:`AcceleratedImageNeuralNet`, once Hugging Face Accelerate is known to be installed.

    Raises
    ------
    ImportError
        Naming the extra to install when ``accelerate`` is missing.
    """
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise ImportError("accelerator= needs Hugging Face Accelerate: pip install 'sklearn-imgcls[accelerate]'.") from None
    return AcceleratedImageNeuralNet
