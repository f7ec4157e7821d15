"""Batch iterator for skorch that slices in-memory tensors directly.

skorch's default iterator is a :class:`torch.utils.data.DataLoader`, which
fetches every sample through ``__getitem__`` and stacks them again with the
default collate function. For images already held in memory that costs more
than small networks' compute, so :class:`BatchIterator` draws a permutation
and indexes whole batches at once. Datasets of files still go through a
``DataLoader`` (with workers), since decoding dominates there.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from skorch.dataset import Dataset
from torch.utils.data import Subset
from torch.utils.weak import WeakIdKeyDictionary

from ..plugin.registry import ComponentChain
from .network import to_float_images
from .loader_workers import make_loader

__all__ = ["BatchIterator", "augment_batch", "images_of", "in_memory_tensors", "on_device", "shard_batches", "with_images"]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Sample = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def images_of(X: Any) -> Any:
    """The images of a batch or dataset input: ``X`` itself, or ``X["images"]`` when it carries sample weights."""
    return X["images"] if isinstance(X, Mapping) else X


def with_images(X: Any, images: torch.Tensor) -> Any:
    """``X`` with its images replaced: the tensor itself, or the dict with its sample weights kept."""
    return {**X, "images": images} if isinstance(X, Mapping) else images


def in_memory_tensors(dataset) -> tuple[Any, torch.Tensor | None, torch.Tensor | None] | None:
    """Return ``(X, y, indices)`` when ``dataset`` holds tensors in memory.

    ``X`` is the image tensor, or a dict ``{"images", "sample_weight"}`` of
    tensors when the fit is sample-weighted. ``indices`` is None for a whole
    dataset and the subset's positions for a :class:`torch.utils.data.Subset`
    (as skorch's validation split makes). Returns None for any other dataset.
    """
    indices = None
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(dataset.indices, dtype=torch.long)
        dataset = dataset.dataset
    if type(dataset) is Dataset and isinstance(images_of(dataset.X), torch.Tensor):
        y = dataset.y if isinstance(dataset.y, torch.Tensor) else None
        return dataset.X, y, indices
    return None


def _targets(dataset) -> torch.Tensor:
    """The labels of a dataset (or subset of one), read without decoding its images where possible."""
    indices = None
    base = dataset
    while isinstance(base, Subset):
        positions = torch.as_tensor(base.indices, dtype=torch.long)
        indices = positions if indices is None else positions[indices]
        base = base.dataset
    y = getattr(base, "y", None)
    if y is None:
        return torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(dataset))])
    y = torch.as_tensor(y)
    return y if indices is None else y[indices]


def shard_batches(order: torch.Tensor, batch_size: int, shard: tuple[int, int]) -> list[torch.Tensor]:
    """This process's batches of an epoch's ``order``, dealt out as Accelerate deals a prepared DataLoader's.

    ``order`` (positions, the same on every process) is cut into batches of
    ``batch_size``; :class:`accelerate.data_loader.BatchSamplerShard` (the
    sharding ``accelerator.prepare`` gives a ``DataLoader``, without
    ``split_batches``) gives process ``rank`` of ``world`` the batches
    ``rank, rank + world, ...``, and fills the last round with samples from
    the start of the order, so that every process takes the same number of
    equally sized steps (DistributedDataParallel synchronises every step: a
    process with one batch more would wait for the others forever). Gathered
    in rank order, round by round, the batches are the epoch's order followed
    by the padding.

    Parameters
    ----------
    order : torch.Tensor
        The epoch's sample positions.
    batch_size : int
        Samples per process and step.
    shard : (int, int)
        ``(rank, world_size)``.

    Returns
    -------
    list of torch.Tensor
        Position tensors, one per step of this process.
    """
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler

    rank, world = shard
    batches = BatchSampler(order.tolist(), batch_size, drop_last=False)
    shards = BatchSamplerShard(batches, num_processes=world, process_index=rank, split_batches=False, even_batches=True)
    return [torch.as_tensor(batch, dtype=torch.long) for batch in shards]


#: device copies of in-memory training data, kept as long as the host tensor lives (one copy per fit, not per epoch)
# (keyed by identity: a plain WeakKeyDictionary would compare tensors with ``==``, element by element)
_DEVICE_COPIES: "WeakIdKeyDictionary[torch.Tensor, dict[str, torch.Tensor]]" = WeakIdKeyDictionary()


def on_device(X: Any, device: torch.device) -> Any:
    """``X`` (a tensor, or a dict of them) on ``device``, copied from the host at most once per tensor.

    skorch builds a new iterator every epoch; the copy is cached against the
    host tensor (weakly: it goes when the fit's dataset goes), so the images
    cross to the card once per ``fit``.
    """
    if isinstance(X, Mapping):
        return {key: on_device(value, device) for key, value in X.items()}
    if X.device == device:
        return X
    copies = _DEVICE_COPIES.setdefault(X, {})
    key = str(device)
    if key not in copies:
        copies[key] = X.to(device)
    return copies[key]


def _take(X: Any, index: Any) -> Any:
    if isinstance(X, Mapping):
        return {key: value[index] for key, value in X.items()}
    return X[index]


def augment_batch(
    augment: Any,
    images: torch.Tensor,
    targets: torch.Tensor | None,
    generator: torch.Generator,
    num_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply an augmentation (or a chain of them) to a float batch and its targets.

    Per-image augmentations see only the images. Label-mixing ones (their
    spec declares ``mixes_labels=True``: mixup, cutmix; known only through a
    :class:`~sklearn_imgcls.plugin.registry.ComponentChain`) get the targets
    one-hot encoded over ``num_classes`` and return soft targets. A bare
    callable is a per-image augmentation.

    Returns
    -------
    images : torch.Tensor
    targets : torch.Tensor or None
        Unchanged, or ``(N, num_classes)`` soft targets after label mixing.
    """
    if isinstance(augment, ComponentChain):
        steps = zip(augment.components(), augment.mixes_labels())
    else:
        steps = [(augment, False)]
    for component, mixes_labels in steps:
        if mixes_labels:
            if targets is None or num_classes is None:
                raise ValueError("Label-mixing augmentations (mixup, cutmix) need labels and num_classes.")
            if targets.ndim == 1:
                targets = F.one_hot(targets.long(), num_classes).float()
            images, targets = component(images, targets, generator)
        else:
            images = component(images, generator)
    return images, targets


class BatchIterator:
    """Iterate ``(images, labels)`` batches of a skorch dataset.

    Used by :class:`~sklearn_imgcls._core.base.BaseImageClassifier` as skorch's
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
        ``augment(images, generator)`` applied to every training batch, or a
        :class:`~sklearn_imgcls.plugin.registry.ComponentChain` of augmentations,
        whose label-mixing members (declared ``mixes_labels=True``) also receive
        and return the targets, one-hot encoded.
    sampler : callable or None
        ``sample(y, generator)`` giving the indices of one epoch (replaces
        shuffling).
    num_workers : int
        DataLoader workers for datasets that are not in memory.
    num_classes : int or None
        Number of classes, needed to one-hot encode targets for label mixing.
    shard : (int, int) or None
        ``(rank, world_size)`` under several accelerate processes. The epoch's
        order is cut into batches and dealt out as Accelerate deals a prepared
        ``DataLoader``'s batches (:func:`shard_batches`): every process gets the
        same number of equally sized batches, the last round padded with
        samples from the start of the order.
    device : str, torch.device or None
        Where the network trains. For in-memory tensors and a device other
        than the CPU (a CUDA card), the images and labels are copied there
        once (:func:`on_device`, kept while the dataset's tensors live) and
        every batch is indexed and augmented there: no per-batch copy from
        the host. The order and the augmentations' random numbers are still
        drawn on the CPU, so training sees the same batches on any device.
        Datasets of files always go through a ``DataLoader`` on the CPU.
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
        num_classes: int | None = None,
        shard: tuple[int, int] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator if generator is not None else torch.Generator()
        self.augment = augment
        self.sampler = sampler
        self.num_workers = num_workers
        self.num_classes = num_classes
        self.shard = shard
        self.device = device
        self._tensors = in_memory_tensors(dataset)

    def __len__(self) -> int:
        batches = -(-len(self.dataset) // self.batch_size)
        if self.shard is None:
            return batches
        world = self.shard[1]
        return -(-batches // world)  # rounds of ``world`` batches, the last one padded (see shard_batches)

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
        device = torch.device(self.device) if self.device is not None else None
        if device is not None and device.type != "cpu":  # device-resident: index and augment where the network is
            X, y = on_device(X, device), None if y is None else on_device(y, device)
        where = images_of(X).device  # the order is drawn (and sharded) on the CPU, then indexes X where X is
        if self.shard is not None:
            batches = [batch.to(where) for batch in shard_batches(
                torch.arange(len(images_of(X))) if order is None else order, self.batch_size, self.shard)]
        else:
            order = None if order is None else order.to(where)
            n = len(images_of(X)) if order is None else len(order)
            batches = (slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
                       for start in range(0, n, self.batch_size))
        for index in batches:
            xb = _take(X, index)
            yb = None if y is None else y[index]
            yield self._augmented(xb, yb)

    def _augmented(self, xb: Any, yb: torch.Tensor | None) -> tuple[Any, torch.Tensor | None]:
        if self.augment is None:
            return xb, yb
        images, yb = augment_batch(self.augment, to_float_images(images_of(xb)), yb, self.generator, self.num_classes)
        return with_images(xb, images), yb

    def _iter_loader(self):
        from .images import collate_images

        dataset = self.dataset
        sampler = None
        if self.sampler is not None:
            sampler = self.sampler(_targets(dataset), self.generator).tolist()
        if self.shard is None:
            loader = make_loader(
                dataset,
                self.batch_size,
                self.num_workers,
                shuffle=self.shuffle and sampler is None,
                sampler=sampler,
                generator=self.generator,
                collate_fn=collate_images,  # a batch mixing 8-bit and 16-bit files becomes float32
            )
        else:  # the same order on every process (same seed), dealt out in batches as Accelerate does
            if sampler is not None:
                order = torch.as_tensor(sampler, dtype=torch.long)
            elif self.shuffle:
                order = torch.randperm(len(dataset), generator=self.generator)
            else:
                order = torch.arange(len(dataset))
            batches = [batch.tolist() for batch in shard_batches(order, self.batch_size, self.shard)]
            # (DataLoader takes batch_sampler only with its default batch_size=1)
            loader = make_loader(dataset, 1, self.num_workers, batch_sampler=batches, collate_fn=collate_images)
        for xb, yb in loader:
            yield self._augmented(xb, yb)
