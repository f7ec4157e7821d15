"""Device-resident training batches: in-memory data copied to the training device once, cut and augmented there.

No GPU runs these tests: PyTorch's ``meta`` device stands in for a card. Like
CUDA, it refuses an operation that mixes its tensors with CPU tensors
("Tensor on device cpu is not on the expected device meta"), so a random
number or an index left on the CPU fails here as it would on a GPU. Meta
tensors have shapes but no values: what the values are is checked on the CPU,
where the device path must change nothing.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset
from torch.utils.data import Subset

from sklearn_imgcls import CNNClassifier, build_augmentation, list_augmentations
from sklearn_imgcls._core.iterators import _DEVICE_COPIES, BatchIterator, augment_batch, on_device
from sklearn_imgcls.builtin import augmentations
from sklearn_imgcls.plugin.registry import ComponentChain

META = torch.device("meta")
MIXERS = ["mixup", "cutmix"]


def batch_augmentations() -> list[str]:
    """Every augmentation of the built-in batch module (the policies live in another module)."""
    names = [spec.name for spec in augmentations.sklearn_imgcls_register_augmentations()]
    assert {"flip_h", "random_crop", "random_erasing", "color_jitter", "gaussian_noise", "rotate"} <= set(names)
    assert set(names) <= set(list_augmentations())
    return names


@pytest.mark.parametrize("name", batch_augmentations())
def test_each_builtin_augmentation_runs_on_the_batch_device(name):
    images = torch.rand(6, 3, 10, 12)
    on_cpu = build_augmentation(name)(images, torch.Generator().manual_seed(0))
    on_card = build_augmentation(name)(images.to(META), torch.Generator().manual_seed(0))
    assert on_card.device == META and on_card.shape == on_cpu.shape and on_card.dtype == on_cpu.dtype


@pytest.mark.parametrize("name", MIXERS)
def test_label_mixing_runs_on_the_batch_device(name):
    images, labels = torch.rand(6, 1, 8, 8), torch.arange(6) % 3
    chain = ComponentChain("augmentation", [(name, {"p": 1.0})])
    mixed, soft = augment_batch(chain, images.to(META), labels.to(META), torch.Generator().manual_seed(0), 3)
    assert mixed.device == META and soft.device == META and soft.shape == (6, 3)


def _tensors(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8), torch.arange(n) % 3


def test_in_memory_batches_are_cut_and_augmented_on_the_training_device():
    X, y = _tensors()
    weights = torch.linspace(0.5, 1.5, len(X))
    chain = ComponentChain("augmentation", [("random_crop", {"padding": 1}), ("random_erasing", {})])
    for dataset in (Dataset(X, y), Subset(Dataset(X, y), [1, 3, 5, 7, 9]), Dataset({"images": X, "sample_weight": weights}, y)):
        iterator = BatchIterator(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0),
                                 augment=chain, device="meta")
        batches = list(iterator)
        assert len(batches) == len(iterator)
        for xb, yb in batches:
            for tensor in (xb.values() if isinstance(xb, dict) else [xb]):
                assert tensor.device == META
            assert yb.device == META
        assert sum(len(yb) for _, yb in batches) == len(dataset)


def test_the_device_copy_is_made_once_per_fit_and_dropped_with_the_data():
    X, y = _tensors()
    first = list(BatchIterator(Dataset(X, y), batch_size=4, device="meta"))
    copies = _DEVICE_COPIES[X]
    assert set(copies) == {"meta"} and copies["meta"].shape == X.shape
    list(BatchIterator(Dataset(X, y), batch_size=4, device="meta"))  # a second epoch: skorch builds a new iterator
    assert _DEVICE_COPIES[X]["meta"] is copies["meta"] and len(first) == 3
    assert on_device(X, torch.device("cpu")) is X  # already there: no copy, no cache entry of its own
    count = len(_DEVICE_COPIES)
    del X, first, copies
    gc.collect()
    assert len(_DEVICE_COPIES) == count - 1


def test_on_the_cpu_the_device_path_gives_the_same_batches():
    X, y = _tensors(37)
    chain = ComponentChain("augmentation", [("random_crop", {"padding": 2}), ("flip_h", {}), ("color_jitter", {})])

    def epoch(device):
        iterator = BatchIterator(Subset(Dataset(X, y), list(range(3, 37))), batch_size=8, shuffle=True,
                                 generator=torch.Generator().manual_seed(5), augment=chain, device=device)
        return list(iterator)

    for (xa, ya), (xb, yb) in zip(epoch(None), epoch("cpu"), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_fit_passes_its_device_to_the_batch_iterators(digits_small):
    X, y = digits_small
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=1, validation_fraction=0.2,
                        device="cpu", random_state=0).fit(X, y)
    assert clf.net_.iterator_train__device == torch.device("cpu")
    assert clf.net_.iterator_valid__device == torch.device("cpu")
    assert np.isfinite(clf.history_[-1, "valid_loss"])
