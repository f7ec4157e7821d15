"""The one inference loop: a network applied batch by batch to images, outputs stacked on the CPU.

``predict_proba`` (through :func:`predicted_probabilities`),
:class:`~sklearn_imgcls.BackboneFeatures` and the embeddings of
:mod:`sklearn_imgcls.quality` all run :func:`map_batches`: evaluation mode
(restored afterwards), :func:`torch.inference_mode`, batches moved to the
network's device, float32 results written into one preallocated array.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .data import ImageData
from .multilabel import label_probabilities
from .net import class_probabilities
from .network import module_device
from .tta import test_time_views

__all__ = ["inference_batch_size", "map_batches", "predicted_probabilities"]

#: GPU inference batches: up to this many values (image size x count), at most this many images
_GPU_BATCH_VALUES = 4_000_000
_GPU_BATCH_MAX = 1024


def inference_batch_size(batch_size: int, image_shape: Sequence[int], device: torch.device | None = None) -> int:
    """Images per inference batch on ``device``.

    ``batch_size`` on a CPU (larger batches fall out of its caches and ran
    slower in ``benchmarks/bench_overhead.py``); on a GPU, larger batches for
    small images (up to 4 million values and 1024 images per batch).
    """
    if device is None or device.type != "cuda":
        return int(batch_size)
    per_image = int(np.prod(image_shape))
    return max(int(batch_size), min(_GPU_BATCH_MAX, _GPU_BATCH_VALUES // per_image))


def map_batches(
    module: nn.Module,
    data: ImageData,
    step: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    workers: int = 0,
) -> np.ndarray:
    """``step(batch)`` for every batch of ``data``, stacked in the order of ``data`` as float32.

    Parameters
    ----------
    module : torch.nn.Module
        The network ``step`` calls; it is put in evaluation mode for the loop
        (its previous mode is restored) and decides the device batches go to.
    data : ImageData
        The images, in memory or as files (decoded by ``workers`` DataLoader
        processes).
    step : callable
        Maps a batch on the module's device to one output row per image.
    batch_size, workers : int
        Images per batch; DataLoader workers for file inputs.

    Returns
    -------
    numpy.ndarray of shape (len(data), ...) and dtype float32
    """
    device = module_device(module)  # skorch's device, or wherever an accelerator placed it
    was_training = module.training
    module.eval()
    out: np.ndarray | None = None
    start = 0
    try:
        with torch.inference_mode():
            for batch in data.batches(batch_size, workers):
                rows = step(batch.to(device, non_blocking=True)).float()
                rows = rows.reshape(len(batch), *rows.shape[1:]).cpu().numpy()
                if out is None:
                    out = np.empty((len(data), *rows.shape[1:]), dtype=np.float32)
                out[start : start + len(rows)] = rows
                start += len(rows)
    finally:
        module.train(was_training)
    if out is None:  # no images
        return np.empty((0,), dtype=np.float32)
    return out


def predicted_probabilities(
    module: nn.Module, data: ImageData, views: Sequence[str], batch_size: int, workers: int = 0,
    multilabel: bool = False,
) -> np.ndarray:
    """Softmax outputs summed over the image and its test-time ``views`` (float32, unnormalised).

    The caller divides by the row sums (in float64) to average the views.
    With ``multilabel``: each label's sigmoid, averaged over the views (rows
    do not sum to 1).
    """
    nonlinearity = label_probabilities if multilabel else class_probabilities

    def step(batch: torch.Tensor) -> torch.Tensor:
        summed = nonlinearity(module(batch).float())
        count = 1
        for view in test_time_views(batch, views):
            summed += nonlinearity(module(view).float())
            count += 1
        return summed / count if multilabel else summed

    return map_batches(module, data, step, batch_size, workers)
