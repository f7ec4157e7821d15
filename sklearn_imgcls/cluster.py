"""Helpers for running our work on a Dask cluster (``pip install 'sklearn-imgcls[dask]'``).

:func:`current_client` finds the client a user started (``Client(...)``) and
:func:`match_worker_threads` gives torch on each worker the worker's own thread
count, so two single-threaded workers on one machine do not each start a
thread per core. :func:`~sklearn_imgcls.select.leaderboard` (``backend="dask"``),
:func:`~sklearn_imgcls.batch_predict.predict_files` (``client=``) and the
command line's ``--backend dask`` use them.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

__all__ = ["BACKENDS", "check_backend", "current_client", "joblib_backend", "match_worker_threads"]


def current_client() -> Any:
    """The Dask client of this process (the one made by ``Client(...)`` last).

    Raises
    ------
    ValueError
        dask.distributed is not installed, or no client was started.
    """
    try:
        from dask.distributed import get_client
    except ImportError:
        raise ValueError("backend='dask' needs dask.distributed: pip install 'sklearn-imgcls[dask]'.") from None
    try:
        return get_client()
    except ValueError:
        raise ValueError("backend='dask' found no Dask client: start one first, e.g. "
                         "`Client(LocalCluster(n_workers=2, threads_per_worker=1))` or "
                         "`Client('tcp://scheduler:8786')`.") from None


def _set_torch_threads(dask_worker: Any) -> int:
    import torch

    threads = max(1, int(getattr(dask_worker, "nthreads", 1)))
    torch.set_num_threads(threads)
    return threads


def match_worker_threads(client: Any, threads: int | None = None) -> dict[str, int]:
    """Set torch's thread count on every worker: ``threads``, or each worker's own ``nthreads``.

    Parameters
    ----------
    client : dask.distributed.Client
    threads : int or None

    Returns
    -------
    dict
        Worker address -> the thread count set.
    """
    if threads is not None:
        import torch

        client.run(torch.set_num_threads, int(threads))
        return {address: int(threads) for address in client.nthreads()}
    return client.run(_set_torch_threads)


#: the ``backend`` values of :func:`joblib_backend` (None: joblib's active one)
BACKENDS = (None, "loky", "threading", "dask")


def check_backend(backend: Any) -> None:
    """Raise a ``ValueError`` naming the choices unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be None, 'loky', 'threading' or 'dask', got {backend!r}.")


@contextlib.contextmanager
def joblib_backend(backend: str | None, scatter: list | None = None) -> Iterator[int | None]:
    """Run the enclosed joblib work (e.g. ``cross_validate``) on ``backend``; yields its default ``n_jobs``.

    Parameters
    ----------
    backend : {None, "loky", "threading", "dask"}
        None leaves joblib's active backend (an enclosing ``joblib.parallel_backend``) in place.
        ``"dask"`` uses :func:`current_client`'s workers, sets their torch threads
        (:func:`match_worker_threads`) and scatters ``scatter`` to every worker
        once, so tasks that take those objects refer to the copy already there.
    scatter : list or None
        Large arguments shared by all tasks (the images and labels).

    Yields
    ------
    int or None
        ``-1`` on Dask (every task at once), else None (joblib's default).
    """
    check_backend(backend)
    if backend is None:
        yield None
        return
    import joblib

    if backend == "dask":
        match_worker_threads(current_client())
        with joblib.parallel_backend("dask", scatter=scatter):
            yield -1
    else:
        with joblib.parallel_backend(backend):
            yield None
