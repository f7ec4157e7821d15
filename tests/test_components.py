"""Batch iterator, built-in augmentations and samplers: properties that must always hold."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skorch.dataset import Dataset
from torch.utils.data import Subset

from sklearn_imgcls import build_augmentation, build_sampler
from sklearn_imgcls._core.iterators import BatchIterator
from sklearn_imgcls.plugin.registry import ComponentChain, get_registry

batches = st.tuples(st.integers(1, 6), st.sampled_from([1, 3]), st.integers(1, 7), st.integers(1, 7))


@settings(max_examples=30, deadline=None)
@given(shape=batches, seed=st.integers(0, 2**16), name=st.sampled_from(["flip_h", "flip_v", "random_crop"]))
def test_augmentations_keep_shape_dtype_range_and_are_seeded(shape, seed, name):
    images = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    augment = build_augmentation(name)
    out = augment(images, torch.Generator().manual_seed(seed))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    again = augment(images, torch.Generator().manual_seed(seed))
    assert torch.equal(out, again)


def test_flip_with_probability_one_mirrors_every_image():
    images = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    assert torch.equal(build_augmentation("flip_h", p=1.0)(images, torch.Generator()), images.flip(-1))
    assert torch.equal(build_augmentation("flip_v", p=0.0)(images, torch.Generator()), images)


def test_random_crop_shifts_content_within_padding():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    for seed in range(20):
        out = build_augmentation("random_crop", padding=1)(image, torch.Generator().manual_seed(seed))
        row, col = divmod(int(out.flatten().argmax()), 5)
        assert abs(row - 2) <= 1 and abs(col - 2) <= 1 and out.sum() == 1.0


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=2, max_size=5), seed=st.integers(0, 1000))
def test_samplers_balance_classes(counts, seed):
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    over = build_sampler("oversample")(y, torch.Generator().manual_seed(seed))
    assert torch.bincount(y[over], minlength=len(counts)).tolist() == [max(counts)] * len(counts)
    under = build_sampler("undersample")(y, torch.Generator().manual_seed(seed))
    assert torch.bincount(y[under], minlength=len(counts)).tolist() == [min(counts)] * len(counts)
    assert len(set(under.tolist())) == len(under)  # without replacement


def test_iterator_visits_every_sample_once_per_epoch_in_batches():
    X = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    y = torch.arange(10)
    iterator = BatchIterator(Dataset(X, y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    first = list(iterator)
    assert [len(xb) for xb, _ in first] == [4, 4, 2] and len(iterator) == 3
    seen = torch.cat([yb for _, yb in first])
    assert sorted(seen.tolist()) == list(range(10))
    assert torch.equal(torch.cat([xb for xb, _ in first]).flatten(), seen.float())
    second = torch.cat([yb for _, yb in iterator])
    assert not torch.equal(seen, second)  # a new order each epoch


def test_iterator_respects_subsets_and_keeps_order_without_shuffle():
    X = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    subset = Subset(Dataset(X, torch.arange(10)), [7, 2, 5])
    (xb, yb), = list(BatchIterator(subset, batch_size=8))
    assert yb.tolist() == [7, 2, 5] and xb.flatten().tolist() == [7.0, 2.0, 5.0]


def test_iterator_slices_without_copy_when_unshuffled():
    X = torch.zeros(6, 1, 2, 2)
    (xb, _), = list(BatchIterator(Dataset(X, None), batch_size=6))
    assert xb.data_ptr() == X.data_ptr()


def test_iterator_applies_sampler_on_subset_labels():
    y = torch.tensor([0, 0, 0, 0, 1, 1, 0, 1])
    subset = Subset(Dataset(torch.zeros(8, 1, 1, 1), y), [0, 1, 2, 3, 4])
    iterator = BatchIterator(subset, batch_size=100, sampler=build_sampler("oversample"))
    (_, yb), = list(iterator)
    assert torch.bincount(yb).tolist() == [4, 4]


def test_component_chain_pickles_by_name_and_rebuilds():
    import pickle

    chain = ComponentChain("augmentation", [("flip_h", {"p": 1.0})]).build()
    restored = pickle.loads(pickle.dumps(chain))
    images = torch.rand(2, 1, 3, 3)
    assert torch.equal(restored(images, torch.Generator()), images.flip(-1))
    assert "flip_h" in repr(restored)


def test_registry_components_are_collected_once():
    registry = get_registry()
    assert registry.specs("sampler") is registry.specs("sampler")
    np.testing.assert_array_equal(registry.names("sampler"), sorted(registry.names("sampler")))


def test_one_resize_serves_the_network_and_the_upsampled_backbones():
    """ImageNetwork (antialiased, may shrink) and Upsampled (only enlarges) share resize_images."""
    import torch.nn.functional as F

    from sklearn_imgcls._core.network import ImageNetwork, resize_images
    from sklearn_imgcls.builtin.torchvision_backbones import Upsampled

    x = torch.rand(2, 3, 20, 13, generator=torch.Generator().manual_seed(0))
    plain = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
    shrunk = resize_images(x, (8, 8), antialias=True)
    assert shrunk.shape == (2, 3, 8, 8) and not torch.allclose(shrunk, plain, atol=1e-3)  # low-passed
    assert torch.allclose(resize_images(x, (40, 26), antialias=True), resize_images(x, (40, 26), antialias=False), atol=1e-6)
    network = ImageNetwork(torch.nn.Identity(), torch.zeros(3), torch.ones(3), input_size=(8, 8))
    assert torch.equal(network(x), shrunk)
    upsampled = Upsampled(torch.nn.Identity(), (40, 26))
    assert torch.equal(upsampled(x), F.interpolate(x, size=(40, 26), mode="bilinear", align_corners=False))
    as_uint8 = (x * 255).round().to(torch.uint8)  # uint8 images are scaled to [0, 1] by the network
    assert torch.allclose(network(as_uint8), resize_images(as_uint8.float() / 255, (8, 8), antialias=True))
