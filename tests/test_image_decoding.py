"""Decoding image files: bit depths, EXIF-displayed shapes, the pixel limit, errors from DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.data import as_image_data, naming_invalid_files
from sklearn_imgcls._core.images import (
    MAX_PIXELS_ENV,
    ImageFileDataset,
    ImageReadError,
    InvalidImagesError,
    collate_images,
    find_invalid_images,
    max_pixels,
    probe_image_shape,
    read_image,
)
from sklearn_imgcls._core.loader_workers import make_loader


def _pair(tmp_path, name, array8):
    """The same picture as an 8-bit and a 16-bit PNG."""
    p8, p16 = tmp_path / f"{name}_8.png", tmp_path / f"{name}_16.png"
    Image.fromarray(array8).save(p8)
    Image.fromarray(array8.astype(np.uint16) * 257).save(p16)  # 255 -> 65535: identical content
    return str(p8), str(p16)


def test_pillow_opens_a_16_bit_png_as_I16_and_it_keeps_its_range(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (8, 10), dtype=np.uint8)
    p8, p16 = _pair(tmp_path, "a", array)
    with Image.open(p16) as image:
        assert image.mode == "I;16"
    for shape in [(1, 8, 10), (1, 5, 6), (3, 8, 10), (4, 8, 10)]:
        eight, sixteen = read_image(p8, shape), read_image(p16, shape)
        assert eight.dtype == np.uint8 and sixteen.dtype == np.float32 and sixteen.shape == shape
        assert 0.0 <= sixteen.min() and sixteen.max() <= 1.0
        # resized in float vs in uint8: within one grey level (before the fix: clipped to {0, 255})
        np.testing.assert_allclose(sixteen[:3], eight[:3] / 255, atol=1.01 / 255)
    np.testing.assert_allclose(read_image(p16, (1, 8, 10)), read_image(p8, (1, 8, 10)) / 255, atol=1e-6)


def test_mode_I_16_bit_pgm_int32_tiff_and_float_tiff_follow_img_as_float(tmp_path):
    values = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(values).save(tmp_path / "a.pgm")  # Pillow opens a 16-bit PGM as mode "I"
    with Image.open(tmp_path / "a.pgm") as image:
        assert image.mode == "I"
    np.testing.assert_allclose(read_image(str(tmp_path / "a.pgm"), (1, 8, 8))[0], values / 65535, atol=1e-6)
    ints = (np.arange(64, dtype=np.int64).reshape(8, 8) * 30_000_000).astype(np.int32)
    Image.fromarray(ints).save(tmp_path / "b.tif")
    np.testing.assert_allclose(read_image(str(tmp_path / "b.tif"), (1, 8, 8))[0], ints / (2**31 - 1), atol=1e-6)
    floats = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(floats).save(tmp_path / "c.tif")
    np.testing.assert_allclose(read_image(str(tmp_path / "c.tif"), (1, 8, 8))[0], floats, atol=1e-6)


def test_pil_inputs_of_16_bits_match_their_8_bit_copies():
    array = np.random.default_rng(1).integers(0, 256, (2, 8, 8), dtype=np.uint8)
    eight = as_image_data([Image.fromarray(a) for a in array]).tensor
    sixteen = as_image_data([Image.fromarray(a.astype(np.uint16) * 257) for a in array]).tensor
    mixed = as_image_data([Image.fromarray(array[0]), Image.fromarray(array[1].astype(np.uint16) * 257)]).tensor
    assert eight.dtype == torch.uint8 and sixteen.dtype == mixed.dtype == torch.float32
    torch.testing.assert_close(sixteen, eight.float() / 255, atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed, eight.float() / 255, atol=1e-6, rtol=0)


def test_batches_mixing_8_and_16_bit_files_are_float(tmp_path):
    array = np.random.default_rng(2).integers(0, 256, (8, 8), dtype=np.uint8)
    p8, p16 = _pair(tmp_path, "m", array)
    images, _ = next(iter(make_loader(ImageFileDataset(np.array([p8, p16]), None, (1, 8, 8)), 2, 0,
                                      collate_fn=collate_images)))
    assert images.dtype == torch.float32
    torch.testing.assert_close(images[0], images[1], atol=1e-6, rtol=0)
    sample = as_image_data([p8, p16]).sample(2)
    torch.testing.assert_close(sample[0], sample[1], atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, digits):
    X, y = digits
    root = tmp_path_factory.mktemp("depths")
    paths8, paths16 = [], []
    for i in range(60):
        p8, p16 = _pair(root, f"{i:03d}", (X[i].reshape(8, 8) * 255).round().astype(np.uint8))
        paths8.append(p8)
        paths16.append(p16)
    return np.array(paths8), np.array(paths16), np.asarray(y[:60])


def test_a_model_fitted_on_8_bit_files_predicts_the_same_on_16_bit_copies_and_mixed_folders_fit(pairs):
    paths8, paths16, y = pairs
    model = CNNClassifier(preset="fast", max_epochs=2, batch_size=16, random_state=0).fit(paths8, y)
    np.testing.assert_allclose(model.predict_proba(paths16), model.predict_proba(paths8), atol=1e-4)
    mixed = np.where(np.arange(60) % 2 == 0, paths8, paths16)
    assert model.predict(mixed).tolist() == model.predict(paths8).tolist()
    refit = CNNClassifier(preset="fast", max_epochs=1, batch_size=16, random_state=0).fit(mixed, y)
    assert refit.predict(mixed).shape == (60,)


def test_the_shape_of_an_exif_rotated_first_file_is_the_displayed_one(tmp_path):
    image = Image.fromarray(np.zeros((4, 6), dtype=np.uint8))  # stored landscape: 6 wide, 4 high
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees: 4 wide, 6 high
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert probe_image_shape(str(path)) == (1, 6, 4)
    assert as_image_data([str(path)]).image_shape == (1, 6, 4)


def test_a_palette_image_is_read_in_colour(tmp_path):
    Image.new("RGB", (4, 4), (200, 10, 10)).convert("P").save(tmp_path / "p.png")
    assert probe_image_shape(str(tmp_path / "p.png"))[0] == 3


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("L", (12000, 12000), 128).save(path)  # about 140 KB on disk, 144 million pixels
    return str(path)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, at 89 million pixels
def test_a_file_above_the_pixel_limit_is_refused_before_decoding(huge_png, tmp_path, monkeypatch):
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_pixels() == 50_000_000
    pattern = r"huge\.png.*12000x12000 = 144,000,000 pixels.*limit of 50,000,000.*SKLEARN_IMGCLS_MAX_PIXELS"
    with pytest.raises(ImageReadError, match=pattern):
        read_image(huge_png, (1, 8, 8))
    with pytest.raises(ImageReadError, match=pattern):
        probe_image_shape(huge_png)
    assert find_invalid_images([huge_png])[0][1].startswith("it declares 12000x12000")
    Image.new("L", (300, 300), 5).save(tmp_path / "big.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    with pytest.raises(ValueError, match=r"big\.png.*300x300 = 90,000 pixels.*limit of 10,000"):
        read_image(str(tmp_path / "big.png"), (1, 8, 8))
    monkeypatch.setenv(MAX_PIXELS_ENV, "100000")
    assert read_image(str(tmp_path / "big.png"), (1, 8, 8)).max() == 5
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match="SKLEARN_IMGCLS_MAX_PIXELS='lots' must be a positive whole number"):
        max_pixels()


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (1600, 1200, 3), dtype=np.uint8)).save(tmp_path / "big.jpg")
    resized = []
    original = Image.Image.resize

    def spy(self, size, *args, **kwargs):
        resized.append(self.size)
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    image = read_image(str(tmp_path / "big.jpg"), (3, 16, 12))
    assert image.shape == (3, 16, 12) and resized == [(150, 200)]  # decoded at 1/8 scale, then resized


def _files(tmp_path, n_good=10):
    rng = np.random.default_rng(4)
    paths = []
    for i in range(n_good):
        paths.append(str(tmp_path / f"good{i}.png"))
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(paths[-1])
    data = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    return paths, [str(tmp_path / "truncated.png"), str(tmp_path / "text.png")]


@pytest.mark.parametrize("workers", [0, 2])
def test_an_error_in_a_loader_worker_is_the_same_one_line(tmp_path, workers):
    good, bad = _files(tmp_path)
    dataset = ImageFileDataset(np.array(good[:5] + bad[:1] + good[5:]), None, (1, 8, 8))
    with pytest.raises(ImageReadError) as caught:
        for _ in make_loader(dataset, 2, workers, collate_fn=collate_images):
            pass
    message = str(caught.value)
    assert "\n" not in message and len(message) < 250
    assert message.startswith(f"Cannot read image file {bad[0]!r}: ") and caught.value.path == bad[0]
    with pytest.raises(ImageReadError) as direct:
        read_image(bad[0], (1, 8, 8))
    assert str(direct.value) == message


@pytest.mark.parametrize("workers", [0, 2])
def test_prediction_names_every_bad_file_at_once(tmp_path, workers):
    good, bad = _files(tmp_path)
    model = CNNClassifier(preset="fast", max_epochs=1, batch_size=4, num_workers=workers, random_state=0)
    model.fit(good, [0, 1] * 5)
    X = good[:3] + bad[:1] + good[3:] + bad[1:]
    with pytest.raises(InvalidImagesError) as caught:
        model.predict(X)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message
    assert message.startswith("2 of 12 image file(s) cannot be decoded: ")
    assert all(repr(p) in message for p in bad) and "truncated" in message and "does not recognise" in message
    assert "--skip-invalid" in message and "skip_invalid=True" in message
    assert [p for p, _ in caught.value.invalid] == bad


def test_naming_invalid_files_lists_the_first_ten_and_survives_pickling(tmp_path):
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f"bad{i:02d}.png"))
        (tmp_path / f"bad{i:02d}.png").write_bytes(b"nope")
    data = as_image_data([str(p) for p in paths], (1, 8, 8))
    with pytest.raises(InvalidImagesError, match=r"^12 of 12 .*bad09\.png.*; and 2 more\. Fix") as caught:
        with naming_invalid_files(data):
            read_image(paths[0], (1, 8, 8))
    assert "bad10.png" not in str(caught.value) and len(caught.value.invalid) == 12
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.invalid == caught.value.invalid
    error = ImageReadError(paths[0], "truncated.")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    with naming_invalid_files(as_image_data(np.zeros((2, 8, 8)))), pytest.raises(KeyError):
        raise KeyError("other errors pass through")
