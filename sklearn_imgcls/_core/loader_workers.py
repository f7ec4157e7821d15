"""DataLoader worker processes for decoding image files, safe inside joblib and Dask workers.

Files are decoded in :class:`torch.utils.data.DataLoader` worker processes.
Two things go wrong when that happens inside a parallel search
(``GridSearchCV(n_jobs=2)``, ``sklearn-imgcls tune``):

* inside a joblib *loky* worker the default :mod:`multiprocessing` context is
  loky's own, which a DataLoader cannot start workers with
  (``AttributeError: 'Process' object has no attribute 'env'``);
* Dask's worker processes are daemonic, and a daemonic process may not have
  children (``AssertionError: daemonic processes are not allowed to have
  children``).

:func:`make_loader` therefore names the start method explicitly (``fork``
on Linux, where it is torch's tested default, ``spawn`` elsewhere) and
decodes in the calling process when it may not start children.
:func:`resolve_workers` sizes ``num_workers="auto"`` to the cores this process
was given (joblib gives each of ``n_jobs`` processes its share of threads).
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from . import params as P

__all__ = ["MAX_AUTO_WORKERS", "can_start_workers", "make_loader", "resolve_workers", "worker_context"]

#: upper bound of ``num_workers="auto"``
MAX_AUTO_WORKERS = 4


def can_start_workers() -> bool:
    """Whether this process may start worker processes (daemonic ones, such as Dask's workers, may not)."""
    return not multiprocessing.current_process().daemon


def worker_context() -> multiprocessing.context.BaseContext:
    """The start method DataLoader workers use: ``fork`` on Linux, ``spawn`` elsewhere.

    Named explicitly so that a different process-wide default (loky's, inside
    a joblib worker) is never picked up.
    """
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def resolve_workers(value: Any) -> int:
    """Resolve the ``num_workers`` parameter to a number of decoding processes.

    ``"auto"`` is one worker per core this process may use (torch's thread
    count, which joblib lowers to ``cores // n_jobs`` in its workers), at most
    :data:`MAX_AUTO_WORKERS`; an integer ``>= 0`` is taken as given. Either
    becomes 0 (decode in this process) where no worker may be started.
    """
    workers = min(MAX_AUTO_WORKERS, max(1, torch.get_num_threads())) if value == "auto" else P.check_int(
        "num_workers", value, minimum=0)
    return workers if can_start_workers() else 0


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, **kwargs: Any) -> DataLoader:
    """A :class:`~torch.utils.data.DataLoader` over ``dataset`` whose workers start wherever it runs.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Usually a dataset of image files.
    batch_size : int
        Images per batch.
    num_workers : int
        Worker processes; 0, or any value where this process may not start
        children, decodes in the calling process.
    **kwargs
        Other DataLoader arguments (``shuffle``, ``sampler``, ``generator``, ...).
    """
    workers = num_workers if can_start_workers() else 0
    if workers > 0:
        kwargs.setdefault("multiprocessing_context", worker_context())
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, **kwargs)
