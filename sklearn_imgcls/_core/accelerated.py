"""The skorch net under Hugging Face Accelerate (imported only when ``accelerator=`` is used).

Under several processes (``accelerate launch --num_processes N``) every
process holds the same network (DistributedDataParallel averages the
gradients of every step) and takes its share of each epoch's batches
(:func:`~sklearn_imgcls._core.iterators.shard_batches`, Accelerate's own
dealing). What the processes record must agree too, or one of them would stop
(early stopping, the divergence guard) while the others wait for it forever:

* a training batch's loss is recorded as the mean over the processes (one
  ``all_reduce`` of a scalar per step), its size as the global batch size;
* the validation split (the same on every process: a seeded split) is scored
  once in total: each process predicts its share, the predictions and
  targets are gathered in the split's order, the padding of the last round is
  dropped, and the loss is computed from the gathered batch, so every
  process records the same ``valid_loss`` and its scoring callbacks see the
  whole split's predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import to_device

from .iterators import images_of
from .net import ImageNeuralNet

__all__ = ["AcceleratedImageNeuralNet", "accelerated_net_class"]


def _length(dataset: Any) -> int:
    """Number of samples an iterator's dataset holds (the real ones, before padding)."""
    return len(dataset)


class AcceleratedImageNeuralNet(AccelerateMixin, ImageNeuralNet):
    """:class:`~sklearn_imgcls._core.net.ImageNeuralNet` trained through an ``accelerate.Accelerator``."""

    def _distributed(self) -> bool:
        return getattr(self.accelerator, "num_processes", 1) > 1

    def _initialize_accelerator(self):
        """skorch's preparation, except that a criterion without trainable parameters is left as it is.

        Under several processes ``accelerator.prepare`` wraps every module in
        DistributedDataParallel, which refuses one with nothing to synchronise
        (cross-entropy: "DistributedDataParallel is not needed when a module
        doesn't have any parameter that requires a gradient").
        """
        if self._wrapped_with_accelerator:
            return self
        hidden = [name for name in self._criteria
                  if isinstance(getattr(self, name + "_"), torch.nn.Module)
                  and not any(p.requires_grad for p in getattr(self, name + "_").parameters())]
        criteria = self._criteria
        self._criteria = [name for name in criteria if name not in hidden]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):  # noqa: D102 - skorch API
        if iterator is None or not self._distributed():
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        remaining = _length(iterator.dataset)
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            if training:
                size = torch.tensor([len(images_of(unpack_data(batch)[0]))], device=step["loss"].device)
                loss = self.accelerator.reduce(step["loss"].detach().reshape(1), reduction="mean")
                size = int(self.accelerator.reduce(size, reduction="sum").item())
            else:
                step, size, y = self._gathered_validation(batch, step, remaining)
                loss = step["loss"]
                remaining -= size
                batch = (unpack_data(batch)[0], y)  # scoring callbacks cache the targets with the predictions
            self.history.record_batch(prefix + "_loss", float(loss.item()))
            self.history.record_batch(prefix + "_batch_size", size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)

    def _gathered_validation(self, batch, step: dict, remaining: int) -> tuple[dict, int, Any]:
        """The step of the whole global batch (gathered predictions, padding dropped, and their loss), its size, targets.

        Only predictions, targets and sample weights travel; the images stay
        with their process (callbacks get this process's images beside the
        global batch's targets and predictions).
        """
        Xi, yi = unpack_data(batch)
        parts = {"y_pred": step["y_pred"], "y": yi}
        if isinstance(Xi, Mapping) and "sample_weight" in Xi:
            parts["sample_weight"] = torch.as_tensor(Xi["sample_weight"])
        device = step["y_pred"].device
        parts = {key: torch.as_tensor(value).to(device) for key, value in parts.items() if value is not None}
        gathered = self.accelerator.gather(parts)  # rank order = the split's order (see shard_batches)
        keep = min(remaining, len(gathered["y_pred"]))
        gathered = {key: value[:keep] for key, value in gathered.items()}
        X = {"sample_weight": gathered["sample_weight"]} if "sample_weight" in gathered else None
        with torch.no_grad():
            loss = self.get_loss(gathered["y_pred"], gathered.get("y"), X=X, training=False)
        return {**step, "loss": loss, "y_pred": gathered["y_pred"]}, keep, gathered.get("y")

    def forward_iter(self, X, training=False, device="cpu"):  # noqa: D102 - skorch API
        if not self._distributed():
            yield from super().forward_iter(X, training=training, device=device)
            return
        dataset = self.get_dataset(X)
        remaining = _length(dataset)
        for batch in self.get_iterator(dataset, training=training):
            y_pred = self.evaluation_step(batch, training=training)  # gathered over the processes
            keep = min(remaining, len(y_pred))
            remaining -= keep
            yield to_device(y_pred[:keep], device=device)


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
