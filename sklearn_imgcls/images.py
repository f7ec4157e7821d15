"""Decoding image files with Pillow, and a lazily decoding dataset of files."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from skorch.dataset import Dataset

__all__ = ["MODES", "ImageFileDataset", "check_files_exist", "probe_image_shape", "read_image"]

#: channel count -> Pillow mode the image is converted to
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _open(path: str):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"Refusing {path!r}: {exc} It may be a decompression bomb; if you trust the file, raise "
            "PIL.Image.MAX_IMAGE_PIXELS before loading."
        ) from None
    except FileNotFoundError:
        raise ValueError(f"Image file not found: {path!r}.") from None
    except UnidentifiedImageError:
        raise ValueError(f"Cannot read {path!r}: Pillow does not recognise it as an image.") from None
    except OSError as exc:
        raise ValueError(f"Cannot read image file {path!r}: {exc}.") from None


def probe_image_shape(path: str) -> tuple[int, int, int]:
    """Return ``(channels, height, width)`` of an image file without decoding it.

    Grayscale modes give 1 channel, modes with alpha 4, everything else 3.
    """
    with _open(path) as image:
        bands = len(image.getbands())
        channels = 1 if bands == 1 or image.mode in ("I", "F", "I;16") else (4 if bands == 4 else 3)
        return channels, image.height, image.width


def read_image(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Decode ``path`` into a ``(C, H, W)`` uint8 array of ``image_shape``.

    The image is converted to the mode for ``C`` channels (``L``, ``RGB`` or
    ``RGBA``) and resized with bilinear filtering when its size differs.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, not an image or truncated.
    """
    from PIL import ImageOps

    channels, height, width = image_shape
    if channels not in MODES:
        raise ValueError(
            f"Image files can be read as 1, 3 or 4 channels; image_shape asks for {channels}."
        )
    with _open(path) as image:
        try:
            image = ImageOps.exif_transpose(image).convert(MODES[channels])
            if image.size != (width, height):
                image = image.resize((width, height), resample=2)  # 2 = bilinear
            array = np.array(image, dtype=np.uint8)
        except OSError as exc:
            raise ValueError(f"Cannot decode image file {path!r}: {exc}.") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def check_files_exist(paths: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first missing files, before any work starts."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(f"{len(missing)} image file(s) not found: {shown}{more}.")


class ImageFileDataset(Dataset):
    """Images decoded from files on access, for data that need not fit in memory.

    Parameters
    ----------
    paths : numpy.ndarray of str
        One file per sample.
    y : torch.Tensor or None
        Encoded labels.
    image_shape : tuple of int
        ``(C, H, W)`` every image is converted and resized to.
    sample_weight : torch.Tensor or None
        Per-image weights; when given, items are ``({"images", "sample_weight"}, y)``.
    """

    def __init__(
        self,
        paths: np.ndarray,
        y: torch.Tensor | None,
        image_shape: tuple[int, int, int],
        sample_weight: torch.Tensor | None = None,
    ):
        super().__init__(paths, y)
        self.image_shape = tuple(image_shape)
        self.sample_weight = sample_weight

    def __getitem__(self, i: int):
        image = torch.from_numpy(read_image(self.X[i], self.image_shape))
        target = self.y[i] if self.y is not None else torch.tensor(0)
        if self.sample_weight is not None:
            return {"images": image, "sample_weight": self.sample_weight[i]}, target
        return image, target
