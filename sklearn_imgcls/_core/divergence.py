"""Stop a training run whose loss diverges, with a message that names the learning rate.

A too-high learning rate makes the loss grow without bound (``lr=1e6``:
3e29 after a few batches) or become NaN; without a check the fit finishes
"successfully" with a useless model. :class:`DivergenceGuard` is the skorch
callback every estimator attaches: it raises :class:`TrainingDivergedError`
(a ``ValueError``, as scikit-learn's SGD estimators raise on overflow) as soon
as a batch loss is not finite, or exceeds both :data:`EXPLOSION_FACTOR` times
the fit's first batch loss and :data:`EXPLOSION_FLOOR`.
"""

from __future__ import annotations

import math
from typing import Any

from skorch.callbacks import Callback

__all__ = ["EXPLOSION_FACTOR", "EXPLOSION_FLOOR", "DivergenceGuard", "TrainingDivergedError", "non_finite_output_message"]

#: a batch loss this many times the first batch's counts as exploding (with EXPLOSION_FLOOR)
EXPLOSION_FACTOR = 100.0
#: ... and only above this absolute value (cross-entropy of a random guess over 1,000 classes is 6.9)
EXPLOSION_FLOOR = 1e3


class TrainingDivergedError(ValueError):
    """Training stopped because the loss became non-finite or exploded."""


def _advice(net: Any) -> str:
    lr = getattr(net, "lr", None)
    if isinstance(lr, (int, float)) and lr > 0:
        return (f"Lower the learning rate (lr={lr:g}; try lr={lr / 10:g}), or find one with "
                "estimator.lr_find(X, y); also check that the images hold finite values of a sensible scale.")
    return "Lower the learning rate (lr) or find one with estimator.lr_find(X, y)."


class DivergenceGuard(Callback):
    """skorch callback: raise :class:`TrainingDivergedError` when the training loss diverges.

    Watches every training batch's loss: a non-finite one stops the fit at
    once, and so does one above both :data:`EXPLOSION_FLOOR` and
    :data:`EXPLOSION_FACTOR` times the fit's first batch loss.
    """

    def initialize(self) -> "DivergenceGuard":  # noqa: D102 - skorch API
        self.reference_loss_ = None
        return self

    def on_batch_end(self, net: Any, batch: Any = None, training: bool = False, **kwargs: Any) -> None:  # noqa: D102
        if not training:
            return
        loss = float(net.history[-1, "batches", -1, "train_loss"])
        epoch = len(net.history)
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"Training diverged in epoch {epoch}: a batch's training loss is {loss}. "
                                        f"{_advice(net)}")
        if self.reference_loss_ is None:
            self.reference_loss_ = loss
        elif loss > EXPLOSION_FLOOR and loss > EXPLOSION_FACTOR * max(self.reference_loss_, 1e-12):
            raise TrainingDivergedError(
                f"Training diverged in epoch {epoch}: a batch's training loss grew to {loss:.3g} (first batch: "
                f"{self.reference_loss_:.3g}). {_advice(net)}"
            )


def non_finite_output_message(rows: Any, module: Any, data: Any) -> str:
    """Why the network gave NaN or infinite outputs for ``rows`` of ``data``: its weights, or its inputs.

    Parameters
    ----------
    rows : numpy.ndarray of int
        Positions of the images whose outputs are not finite.
    module : torch.nn.Module
        The fitted network.
    data : sklearn_imgcls._core.data.ImageData
        The images predicted.
    """
    import torch

    shown = ", ".join(str(int(r)) for r in rows[:10]) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
    head = f"The network's outputs are NaN or infinite for {len(rows)} of {len(data)} image(s) (rows {shown})"
    bad_weights = sum(int((~torch.isfinite(p)).sum()) for p in module.parameters())
    bad_weights += sum(int((~torch.isfinite(b)).sum()) for b in module.buffers() if b.is_floating_point())
    if bad_weights:
        return (f"{head}: the model's weights hold {bad_weights} non-finite value(s), so it cannot predict; the fit "
                "diverged or the model file is damaged. Train it again (with a lower lr) or load an intact file.")
    largest = ""
    if getattr(data, "in_memory", False):
        values = data.tensor[torch.as_tensor(rows[:1000], dtype=torch.long)].float().abs()
        largest = f" (largest absolute pixel value {float(values.max()):.3g})"
    return (f"{head}: their values overflow the network{largest}. Pass images in the units used in fit "
            "(pixels in [0, 1] or 0-255), e.g. rescale or clip them first.")
