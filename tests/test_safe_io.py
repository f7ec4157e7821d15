"""Safe image decoding: decompression bombs, truncated files, EXIF orientation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.images import read_image


def test_a_decompression_bomb_is_refused_with_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (200, 200)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 40,000 pixels is more than twice the limit
    with pytest.raises(ValueError, match="bomb.png.*decompression bomb.*MAX_IMAGE_PIXELS"):
        read_image(str(path), (1, 8, 8))
    with pytest.raises(ValueError, match="decompression bomb"):
        CNNClassifier(max_epochs=1).fit([str(path)] * 2, [0, 1])


def test_a_truncated_png_is_named(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.png"):
        read_image(str(bad), (1, 32, 32))


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((4, 6), dtype=np.uint8)
    array[0, 0] = 255  # top-left marker in a landscape image
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=100)
    decoded = read_image(str(path), (1, 6, 4))[0]  # displayed portrait: 6 rows, 4 columns
    assert decoded.shape == (6, 4)
    assert np.unravel_index(decoded.argmax(), decoded.shape) == (0, 3)  # the marker moved to the top-right
