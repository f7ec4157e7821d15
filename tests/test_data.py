"""Input formats: every accepted layout gives the same images; bad input gets a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from sklearn_imgcls._core.data import as_image_data, check_image_shape

shapes = st.tuples(st.integers(1, 5), st.sampled_from([1, 3]), st.integers(2, 9), st.integers(2, 9))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shape=shapes)
def test_all_array_layouts_give_the_same_nchw_images(data, shape):
    n, c, h, w = shape
    nchw = data.draw(arrays(np.float32, shape, elements=st.floats(-10, 10, width=32)))
    expected = torch.from_numpy(nchw)
    flat = as_image_data(nchw.reshape(n, -1), (c, h, w))
    assert flat.image_shape == (c, h, w) and flat.tensor[0].numel() == nchw.reshape(n, -1).shape[1]
    assert torch.equal(flat.tensor, expected)
    assert torch.equal(as_image_data(nchw, (c, h, w)).tensor, expected)
    if (h, w, c) != (c, h, w):  # e.g. 3x3x3: the two layouts cannot be told apart, channels-first is read
        assert torch.equal(as_image_data(nchw.transpose(0, 2, 3, 1), (c, h, w)).tensor, expected)
    if c == 1:
        assert torch.equal(as_image_data(nchw[:, 0]).tensor, expected)
        assert torch.equal(as_image_data(nchw.reshape(n, -1), (h, w)).tensor, expected)


@settings(max_examples=20, deadline=None)
@given(images=arrays(np.uint8, st.tuples(st.integers(1, 4), st.integers(5, 9), st.integers(2, 6), st.just(3))))
def test_uint8_channels_last_is_kept_as_uint8_channels_first(images):
    # heights of 1, 3 or 4 would be ambiguous and read as channels-first (documented)
    data = as_image_data(images)
    assert data.tensor.dtype == torch.uint8
    assert torch.equal(data.tensor, torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))


def test_square_rows_are_read_as_grayscale_and_other_rows_warn():
    assert as_image_data(np.zeros((2, 64))).image_shape == (1, 8, 8)
    with pytest.warns(UserWarning, match="not a square number.*image_shape"):
        assert as_image_data(np.zeros((2, 10))).image_shape == (1, 1, 10)


def test_pandas_inputs_are_accepted():
    frame = pd.DataFrame(np.arange(8.0).reshape(2, 4))
    assert as_image_data(frame).image_shape == (1, 2, 2)


@pytest.mark.parametrize(
    "X, image_shape, error, pattern",
    [
        (np.zeros(5), None, ValueError, "Expected a 2D array.*1D"),
        (np.zeros((0, 4)), None, ValueError, "0 sample"),
        (np.zeros((3, 0)), None, ValueError, "0 feature"),
        (np.zeros((2, 65)), (1, 8, 8), ValueError, r"image_shape=\(1, 8, 8\) describes 64 values.*65 columns"),
        (np.full((2, 4), np.nan), None, ValueError, "NaN or infinity in 2 image"),
        (np.array([[1.0, np.inf, 0, 0]]), None, ValueError, "NaN or infinity"),
        (np.zeros((2, 5, 5, 5)), None, ValueError, "Cannot tell which axis"),
        (np.zeros((2, 3, 8, 8)), (3, 9, 9), ValueError, "matches image_shape"),
        (np.zeros((2, 1, 2, 2, 2)), None, ValueError, "5D array"),
        ([], None, ValueError, "empty"),
        ("picture.png", None, TypeError, "single path"),
        (np.array([["a", "b"]], dtype=object), None, TypeError, "cannot be read as numbers"),
        (np.zeros((2, 4), dtype=complex), None, ValueError, "Complex data not supported"),
    ],
)
def test_bad_inputs_name_the_problem(X, image_shape, error, pattern):
    with pytest.raises(error, match=pattern):
        as_image_data(X, image_shape)


@pytest.mark.parametrize("bad", [(0, 8, 8), (1, 8), "8x8", (1.5, 8, 8), (1, 2, 3, 4)])
def test_invalid_image_shape_parameter(bad):
    if bad == (1, 8):
        assert check_image_shape(bad) == (1, 1, 8)
        return
    with pytest.raises(ValueError, match="image_shape must be"):
        check_image_shape(bad)


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (size, mode) in enumerate([((10, 12), "L"), ((20, 16), "RGB"), ((10, 12), "RGBA"), ((5, 7), "P")]):
        array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(array).convert(mode).save(path)
        paths.append(str(path))
    return paths


def test_file_paths_are_decoded_lazily_to_one_shape(image_files):
    data = as_image_data(pd.Series(image_files))
    assert data.paths is not None and data.tensor is None
    assert data.image_shape == (1, 12, 10)  # first file: grayscale, 10 wide, 12 high
    batches = list(data.batches(3))
    assert [b.shape for b in batches] == [(3, 1, 12, 10), (1, 1, 12, 10)]
    assert batches[0].dtype == torch.uint8
    rgb = as_image_data(image_files, (3, 8, 8))
    assert next(rgb.batches(4)).shape == (4, 3, 8, 8)


def test_first_file_matches_its_pixels(image_files):
    data = as_image_data(image_files[:1])
    expected = np.asarray(Image.open(image_files[0]))
    assert np.array_equal(next(data.batches(1))[0, 0].numpy(), expected)


def test_missing_and_unreadable_files_are_named(image_files, tmp_path):
    with pytest.raises(ValueError, match="1 image file.*not found.*nope.png"):
        as_image_data(image_files + [str(tmp_path / "nope.png")])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    data = as_image_data([image_files[0], str(broken)])
    with pytest.raises(ValueError, match="broken.png"):
        list(data.batches(2))


def test_pil_images_are_converted_in_memory():
    images = [Image.new("RGB", (6, 4), (255, 0, 0)), Image.new("L", (3, 3), 128)]
    data = as_image_data(images)
    assert data.image_shape == (3, 4, 6) and data.tensor.shape == (2, 3, 4, 6)
    assert data.tensor[0, 0].float().mean() == 255 and data.tensor[0, 1].float().mean() == 0


@settings(max_examples=25, deadline=None)
@given(images=arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))))
def test_channel_statistics_match_numpy(images):
    from sklearn_imgcls._core.data import channel_statistics

    as_float = images.astype(np.float64) / 255
    for data in (torch.from_numpy(images), torch.from_numpy(as_float.astype(np.float32))):
        mean, std = channel_statistics(data)
        np.testing.assert_allclose(mean.numpy(), as_float.mean(axis=(0, 2, 3)), atol=1e-6)
        np.testing.assert_allclose(std.numpy(), as_float.std(axis=(0, 2, 3)), atol=1e-6)
