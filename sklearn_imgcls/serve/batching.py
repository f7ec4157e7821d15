"""Requests arriving together are predicted together: one queue, one model thread.

Every request puts its decoded images on an :class:`asyncio.Queue`. One task
takes the first waiting request, gathers the others that arrive within
``max_wait`` seconds (up to ``max_batch`` images), and runs one
``predict_proba`` call for all of them on a single worker thread, so the event
loop keeps accepting requests meanwhile and the model is only ever used by one
thread (Grad-CAM, which hooks the network, runs on that same thread). While a
batch is predicted the next one fills up, so under load batches grow by
themselves.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Batcher"]


class Batcher:
    """Micro-batching of ``predict`` over concurrent requests.

    Parameters
    ----------
    predict : callable
        Takes a list of ``(C, H, W)`` arrays, returns an ``(n, k)`` array of
        probabilities.
    max_batch : int
        Most images in one call (a single request holding more is predicted
        alone, in one call).
    max_wait : float
        Seconds the first request of a batch waits for others.

    Attributes
    ----------
    predict_calls : int
        ``predict`` calls made so far.
    images_predicted : int
        Images predicted so far.
    largest_batch : int
        The most images predicted in one call.
    """

    def __init__(self, predict: Callable[[list], np.ndarray], max_batch: int = 32, max_wait: float = 0.005):
        self.predict, self.max_batch, self.max_wait = predict, int(max_batch), float(max_wait)
        self.predict_calls = self.images_predicted = self.largest_batch = 0
        self.executor: ThreadPoolExecutor | None = None
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.lock = threading.Lock()

    async def start(self) -> None:
        """Start the worker thread and the gathering task (call inside the running event loop)."""
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sklearn-imgcls-model")
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self.gather_forever())

    async def stop(self) -> None:
        """Stop gathering, fail what still waits, and let the worker thread finish."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        while self.queue is not None and not self.queue.empty():
            _, future = self.queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    async def submit(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities for ``images`` (one row each), predicted together with concurrent requests."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((list(images), future))
        return await future

    async def run_alone(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` on the model thread, never at the same time as a batch."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def stats(self) -> dict[str, int]:
        """The counters, for /health."""
        with self.lock:
            return {"predict_calls": self.predict_calls, "images_predicted": self.images_predicted,
                    "largest_batch": self.largest_batch, "waiting_requests": self.queue.qsize() if self.queue else 0}

    def predict_counted(self, images: list) -> np.ndarray:
        """``predict(images)``, counted (runs on the model thread)."""
        proba = self.predict(images)
        with self.lock:
            self.predict_calls += 1
            self.images_predicted += len(images)
            self.largest_batch = max(self.largest_batch, len(images))
        return proba

    async def gather_forever(self) -> None:
        """Take requests off the queue and predict them in batches, until cancelled."""
        loop = asyncio.get_running_loop()
        carried = None
        while True:
            items = [carried if carried is not None else await self.queue.get()]
            carried, count = None, len(items[0][0])
            deadline = loop.time() + self.max_wait
            while count < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if count + len(item[0]) > self.max_batch:
                    carried = item  # first in the next batch
                    break
                items.append(item)
                count += len(item[0])
            await self.predict_batch(items)

    async def predict_batch(self, items: list) -> None:
        """One ``predict`` call for every image of ``items``; each request's future gets its rows."""
        live = [(images, future) for images, future in items if not future.done()]  # clients gone: skip
        if not live:
            return
        images = [image for batch, _ in live for image in batch]
        try:
            proba = await asyncio.get_running_loop().run_in_executor(self.executor, self.predict_counted, images)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for batch, future in live:
            if not future.done():
                future.set_result(proba[start:start + len(batch)])
            start += len(batch)
