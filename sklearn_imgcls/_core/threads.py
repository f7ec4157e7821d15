"""The ``num_threads`` parameter: how many CPU threads torch computes with during ``fit`` and ``predict``.

Results repeat exactly only at a fixed thread count: a float sum split over 2
threads rounds differently than over 1, and after a few epochs the networks
differ (``CNNClassifier("bn_cnn", max_epochs=2, random_state=0)`` on 1,000
digits: 1 vs 2 threads disagreed on 210 of 797 test images). ``num_threads=None`` keeps the process's setting: torch's
default (all cores), or ``cores // n_jobs`` inside ``GridSearchCV(n_jobs=...)``
on joblib's loky backend; Dask workers keep torch's default. An integer sets
it for the duration of the call, whatever runs the estimator.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from . import params as P

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(num_threads: Any) -> Iterator[int]:
    """Run the block with ``num_threads`` torch threads (None: unchanged), then restore the previous count.

    Yields the thread count in force.
    """
    wanted = P.check_int("num_threads", num_threads, allow_none=True)
    previous = torch.get_num_threads()
    if wanted is None or wanted == previous:
        yield previous
        return
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)
