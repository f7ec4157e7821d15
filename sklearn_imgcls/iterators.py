"""Batch iterator for skorch that slices in-memory tensors directly.

skorch's default iterator is a :class:`torch.utils.data.DataLoader`, which
fetches every sample through ``__getitem__`` and stacks them again with the
default collate function. For images already held in memory that costs more
than small networks' compute, so :class:`BatchIterator` draws a permutation
and indexes whole batches at once. Datasets of files still go through a
``DataLoader`` (with workers), since decoding dominates there.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from skorch.dataset import Dataset
from torch.utils.data import DataLoader, Subset

__all__ = ["BatchIterator", "in_memory_tensors"]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Sample = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def in_memory_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None:
    """Return ``(X, y, indices)`` when ``dataset`` holds tensors in memory.

    ``indices`` is None for a whole dataset and the subset's positions for a
    :class:`torch.utils.data.Subset` (as skorch's validation split makes).
    Returns None for any other dataset.
    """
    indices = None
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(dataset.indices, dtype=torch.long)
        dataset = dataset.dataset
    if type(dataset) is Dataset and isinstance(dataset.X, torch.Tensor):
        y = dataset.y if isinstance(dataset.y, torch.Tensor) else None
        return dataset.X, y, indices
    return None


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255) if images.dtype == torch.uint8 else images


class BatchIterator:
    """Iterate ``(images, labels)`` batches of a skorch dataset.

    Used by :class:`~sklearn_imgcls.base.BaseImageClassifier` as skorch's
    ``iterator_train`` and ``iterator_valid``.

    Parameters
    ----------
    dataset : torch Dataset
        Usually a :class:`skorch.dataset.Dataset` of tensors or a subset of one.
    batch_size : int
        Images per batch; the last batch may be smaller.
    shuffle : bool
        Visit the samples in a new random order every epoch.
    generator : torch.Generator or None
        Source of randomness for shuffling, sampling and augmentation.
    augment : callable or None
        ``augment(images, generator)`` applied to every training batch.
    sampler : callable or None
        ``sample(y, generator)`` giving the indices of one epoch (replaces
        shuffling).
    num_workers : int
        DataLoader workers for datasets that are not in memory.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: Augment | None = None,
        sampler: Sample | None = None,
        num_workers: int = 0,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator if generator is not None else torch.Generator()
        self.augment = augment
        self.sampler = sampler
        self.num_workers = num_workers
        self._tensors = in_memory_tensors(dataset)

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def _order(self, y: torch.Tensor | None, indices: torch.Tensor | None) -> torch.Tensor | None:
        if self.sampler is not None:
            if y is None:
                raise ValueError("A sampler needs labels, but the dataset has none.")
            picked = self.sampler(y if indices is None else y[indices], self.generator)
            return picked if indices is None else indices[picked]
        if self.shuffle:
            n = len(self.dataset)
            permutation = torch.randperm(n, generator=self.generator)
            return permutation if indices is None else indices[permutation]
        return indices

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        if self._tensors is None:
            yield from self._iter_loader()
            return
        X, y, indices = self._tensors
        order = self._order(y, indices)
        n = len(X) if order is None else len(order)
        for start in range(0, n, self.batch_size):
            if order is None:
                xb = X[start : start + self.batch_size]
                yb = None if y is None else y[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                xb = X[idx]
                yb = None if y is None else y[idx]
            if self.augment is not None:
                xb = self.augment(_as_float(xb), self.generator)
            yield xb, yb

    def _iter_loader(self):
        sampler = None
        if self.sampler is not None:
            targets = torch.stack([torch.as_tensor(self.dataset[i][1]) for i in range(len(self.dataset))])
            sampler = self.sampler(targets, self.generator).tolist()
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=self.shuffle and sampler is None,
            sampler=sampler,
            generator=self.generator,
            num_workers=self.num_workers,
        )
        for xb, yb in loader:
            if self.augment is not None:
                xb = self.augment(_as_float(xb), self.generator)
            yield xb, yb
