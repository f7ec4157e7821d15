"""Learning-rate schedules over a whole fit, stepped after every training batch.

``lr_schedule="onecycle"`` uses :class:`torch.optim.lr_scheduler.OneCycleLR`
(warm-up to the estimator's ``lr``, then cosine annealing to a small fraction
of it; Adam's ``beta1`` cycles inversely), ``"cosine"``
:class:`torch.optim.lr_scheduler.CosineAnnealingLR` from ``lr`` down to zero,
``"constant"`` keeps ``lr``. The scheduler is created at the first epoch of a
fit, once the length of an epoch is known, for ``max_epochs`` epochs; a fit
resumed from a checkpoint fast-forwards it past the epochs already done.
"""

from __future__ import annotations

import warnings

import torch
from skorch.callbacks import Callback

__all__ = ["LR_SCHEDULES", "LRSchedule"]

#: fewer steps than this in a whole fit: one-cycle keeps the peak rate (torch's needs a few to shape the cycle)
_MIN_ONECYCLE_STEPS = 4

#: accepted values of the estimators' ``lr_schedule`` parameter
LR_SCHEDULES = ("constant", "onecycle", "cosine")


class LRSchedule(Callback):
    """skorch callback running a per-batch learning-rate schedule for ``max_epochs`` epochs.

    Parameters
    ----------
    policy : {"onecycle", "cosine"}
        Which schedule.
    max_epochs : int
        Length of the whole fit, in epochs.
    pct_start : float, default=0.25
        Share of the steps spent warming up (one-cycle only).
    """

    def __init__(self, policy: str, max_epochs: int, pct_start: float = 0.25) -> None:
        self.policy = policy
        self.max_epochs = max_epochs
        self.pct_start = pct_start

    def initialize(self) -> "LRSchedule":  # noqa: D102 - skorch Callback API
        self.scheduler_ = None
        self.total_steps_ = 0
        return self

    def on_train_begin(self, net, **kwargs) -> None:  # noqa: D102 - skorch Callback API
        self.scheduler_ = None  # every fit call starts its own schedule

    def on_epoch_begin(self, net, dataset_train=None, **kwargs) -> None:  # noqa: D102 - skorch Callback API
        if self.scheduler_ is not None or dataset_train is None:
            return
        steps_per_epoch = max(1, len(net.get_iterator(dataset_train, training=True)))
        total = steps_per_epoch * self.max_epochs
        optimizer = net.optimizer_
        if self.policy == "onecycle":
            if total < _MIN_ONECYCLE_STEPS:
                return  # too short to warm up and anneal: the peak rate throughout
            peaks = [group.get("max_lr", group["lr"]) for group in optimizer.param_groups]
            self.scheduler_ = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=peaks, total_steps=total, pct_start=max(self.pct_start, 2.0 / total)
            )
        elif self.policy == "cosine":
            for group in optimizer.param_groups:
                group["lr"] = group.get("initial_lr", group["lr"])
            self.scheduler_ = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        else:
            raise ValueError(f"Unknown learning-rate schedule {self.policy!r}; expected one of {LR_SCHEDULES}.")
        self.total_steps_ = total
        done = steps_per_epoch * max(0, len(net.history) - 1)  # epochs finished before a resumed fit
        with warnings.catch_warnings():  # fast-forwarding before any optimizer step is intended here
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for _ in range(min(done, total - 1)):
                self.scheduler_.step()

    def on_train_end(self, net, **kwargs) -> None:  # noqa: D102 - skorch Callback API
        # torch's schedulers wrap the optimizer's ``step`` in an instance attribute; drop the
        # wrapper once the fit is done, so the optimizer pickles (accelerate's own one too)
        optimizer = getattr(net, "optimizer_", None)
        step = vars(optimizer).get("step") if optimizer is not None else None
        if step is not None and getattr(step, "_wrapped_by_lr_sched", False):
            del optimizer.step
        self.scheduler_ = None

    def __getstate__(self) -> dict:
        # the scheduler wraps the optimizer's step method, which does not pickle; a fit rebuilds it
        return {**self.__dict__, "scheduler_": None}

    def on_batch_end(self, net, training: bool = False, **kwargs) -> None:  # noqa: D102 - skorch Callback API
        # torch's schedulers take total - 1 steps after their initial one; a further step raises
        if training and self.scheduler_ is not None and self.scheduler_.last_epoch < self.total_steps_ - 1:
            self.scheduler_.step()
