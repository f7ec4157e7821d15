"""Learning-rate range test (Smith, 2017): loss against an exponentially rising rate.

Used through ``estimator.lr_find(X, y)`` on any of our classifiers; it trains
a throw-away copy of the network for at most ``num_steps`` batches and
leaves the estimator untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._core.network import module_device

__all__ = ["LRFinderResult", "plot_lr_find", "run_lr_range_test"]


@dataclass
class LRFinderResult:
    """Outcome of a learning-rate range test.

    Attributes
    ----------
    lrs : numpy.ndarray
        Learning rate of each step (of the head's parameter group).
    losses : numpy.ndarray
        Exponentially smoothed training loss after each step.
    suggested_lr : float
        A tenth of the rate at the smoothed loss's minimum, the usual safe
        pick on the steep part of the curve.
    """

    lrs: np.ndarray
    losses: np.ndarray
    suggested_lr: float


def run_lr_range_test(net, dataset, start_lr: float, end_lr: float, num_steps: int, smoothing: float = 0.98):
    """Run the range test on an initialised skorch ``net`` over ``dataset``.

    Stops early once the smoothed loss exceeds four times its minimum.

    Returns
    -------
    LRFinderResult
    """
    module, criterion, optimizer = net.module_, net.criterion_, net.optimizer_
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    top = max(base_lrs)
    factor = (end_lr / start_lr) ** (1.0 / max(1, num_steps - 1))
    lrs, losses = [], []
    average, best, step = 0.0, float("inf"), 0
    module.train()
    device = module_device(module)
    while step < num_steps:
        for xb, yb in net.get_iterator(dataset, training=True):
            lr = start_lr * factor**step
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr * base / top
            optimizer.zero_grad()
            loss = criterion(module(xb.to(device)), yb.to(device))
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (step + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            step += 1
            if step >= num_steps or not np.isfinite(smoothed) or smoothed > 4 * best:
                step = num_steps
                break
    lrs_array, losses_array = np.asarray(lrs), np.asarray(losses)
    finite = np.isfinite(losses_array)
    best_index = int(np.argmin(np.where(finite, losses_array, np.inf)))
    return LRFinderResult(lrs_array, losses_array, float(lrs_array[best_index] / 10))


def plot_lr_find(result: LRFinderResult, ax=None):
    """Plot loss against learning rate (log scale) and mark the suggestion.

    Parameters
    ----------
    result : LRFinderResult
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plot_lr_find needs matplotlib: pip install 'sklearn-imgcls[plot]'.") from None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    ax.plot(result.lrs, result.losses, label="smoothed training loss")
    ax.axvline(result.suggested_lr, color="tab:red", linestyle="--", label=f"suggested lr = {result.suggested_lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("Learning-rate range test")
    ax.legend()
    fig.tight_layout()  # keeps the axis labels inside the figure
    return fig
