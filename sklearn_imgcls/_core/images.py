"""Decoding image files with Pillow, and a lazily decoding dataset of files.

Pixel values
    8-bit images decode to ``uint8`` (the network scales them by 1/255).
    Images of a higher bit depth decode to ``float32`` in ``[0, 1]`` units,
    following scikit-image's ``img_as_float``: 16-bit (Pillow modes ``I;16``,
    ``I;16B``, ..., and ``I`` where the file stores 16 bits) by 1/65535, 32-bit
    integer ``I`` by 1/(2**31 - 1), float ``F`` as stored. Their channels are
    converted and they are resized in float, so nothing is clipped. A batch
    mixing both is promoted to float by :func:`collate_images`.
Orientation
    The EXIF orientation is applied: shapes and pixels are those displayed.
Size limit
    A file declaring more than :func:`max_pixels` pixels (default
    :data:`MAX_PIXELS`, 50 million; set the environment variable
    ``SKLEARN_IMGCLS_MAX_PIXELS`` or this module's ``MAX_PIXELS`` to change it)
    is refused before it is decoded. Large JPEGs are decoded at a reduced
    scale (``Image.draft``) close to the size asked for.
"""

from __future__ import annotations

import ast
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
import torch
from skorch.dataset import Dataset

from .errors import ImageInputError
from .network import to_float_images

__all__ = [
    "MAX_PIXELS", "MAX_PIXELS_ENV", "MODES", "ImageFileDataset", "ImageReadError", "InvalidImagesError",
    "check_files_exist", "collate_images", "find_invalid_images", "image_bit_depth", "image_channels", "image_to_array", "max_pixels",
    "open_image",
    "pixel_divisor", "probe_image_shape", "read_image", "stack_images",
]

#: channel count -> Pillow mode the image is converted to
MODES = {1: "L", 3: "RGB", 4: "RGBA"}

#: default largest number of pixels a file may declare (see :func:`max_pixels`)
MAX_PIXELS = 50_000_000

#: environment variable that overrides :data:`MAX_PIXELS`
MAX_PIXELS_ENV = "SKLEARN_IMGCLS_MAX_PIXELS"

_ORIENTATION = 0x0112
_SWAPPED = (5, 6, 7, 8)  # EXIF orientations that exchange width and height
_MESSAGE = re.compile(r"Cannot read image file ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"): (.*)")


class ImageReadError(ValueError):
    """An image file that cannot be decoded.

    Its message is one line, ``Cannot read image file '<path>': <reason>``.
    Rebuilt from a longer text (as torch's ``ExceptionWrapper.reraise`` does
    with a DataLoader worker's traceback), it recovers that line.

    Attributes
    ----------
    path : str or None
        The file.
    reason : str
        Why it cannot be read, one line.
    """

    def __init__(self, path: str, reason: str | None = None):
        if reason is None:  # one argument: the message, possibly inside a worker's traceback
            found = [m for m in (_MESSAGE.search(line) for line in str(path).splitlines()) if m]
            if found:
                path, reason = ast.literal_eval(found[-1].group(1)), found[-1].group(2)
            else:
                path, reason = None, str(path)
        if path is not None and not isinstance(path, (str, os.PathLike)):  # a file object (an upload)
            path = getattr(path, "name", "<in-memory image>")
        path = None if path is None else str(os.fspath(path))  # a plain str, never np.str_('...')
        self.path, self.reason = path, reason
        super().__init__(f"Cannot read image file {path!r}: {reason}" if path is not None else reason)

    def __reduce__(self):
        return type(self), (self.path, self.reason)


class InvalidImagesError(ValueError):
    """Several image files cannot be decoded; ``invalid`` lists every one as ``(path, reason)``.

    The message is one line: the count, the first ten files with their reason,
    and how to fix or skip them.
    """

    def __init__(self, invalid: Sequence[tuple[str, str]], n_total: int | None = None):
        self.invalid, self.n_total = [tuple(item) for item in invalid], n_total
        shown = "; ".join(f"{p!r} ({reason.rstrip('.')})" for p, reason in self.invalid[:10])
        more = f"; and {len(self.invalid) - 10} more" if len(self.invalid) > 10 else ""
        of = f" of {n_total}" if n_total is not None else ""
        super().__init__(
            f"{len(self.invalid)}{of} image file(s) cannot be decoded: {shown}{more}. Fix or remove them, or leave "
            "them out with --skip-invalid on the command line, or in Python with "
            "sklearn_imgcls.datasets.load_image_folder(..., skip_invalid=True) (or load_image_table, "
            "drop_invalid_images)."
        )

    def __reduce__(self):
        return type(self), (self.invalid, self.n_total)


def max_pixels() -> int:
    """The largest number of pixels an image file may declare.

    ``$SKLEARN_IMGCLS_MAX_PIXELS`` when set, else :data:`MAX_PIXELS`
    (50,000,000, well below Pillow's decompression-bomb limit of about 179
    million). Files above it are refused before they are decoded.
    """
    value = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not value:
        return int(MAX_PIXELS)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} must be a positive whole number of pixels, "
            "e.g. 200000000."
        )
    return int(value)


def open_image(path: str):
    """Open ``path`` with Pillow (header only), refusing files above :func:`max_pixels`.

    Raises
    ------
    ImageReadError
        When the file is missing, not an image, a decompression bomb or too large.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"{exc} It may be a decompression bomb; if you trust the file, raise "
                                   "PIL.Image.MAX_IMAGE_PIXELS before loading.") from None
    except FileNotFoundError:
        raise ImageReadError(path, "file not found.") from None
    except UnidentifiedImageError:
        raise ImageReadError(path, "Pillow does not recognise it as an image.") from None
    except OSError as exc:
        raise ImageReadError(path, f"{exc}.") from None
    limit = max_pixels()
    if image.width * image.height > limit:
        image.close()
        raise ImageReadError(
            path, f"it declares {image.width}x{image.height} = {image.width * image.height:,} pixels, above the "
                  f"limit of {limit:,}; shrink the file or, if you trust it, raise the limit with the environment "
                  f"variable {MAX_PIXELS_ENV} (e.g. {MAX_PIXELS_ENV}={image.width * image.height})."
        )
    return image


def _displayed_size(image) -> tuple[int, int]:
    """``(width, height)`` as displayed, after the EXIF orientation."""
    swapped = image.getexif().get(_ORIENTATION) in _SWAPPED
    return (image.height, image.width) if swapped else image.size


def image_channels(image) -> int:
    """The channel count a PIL image is read with: 1 for single-band modes, 3 for palettes and colour, 4 with alpha."""
    if image.mode == "P":
        return 3  # palette images hold colours
    bands = len(image.getbands())
    return 1 if bands == 1 else (4 if bands == 4 else 3)


def probe_image_shape(path: str) -> tuple[int, int, int]:
    """Return ``(channels, height, width)`` of an image file as displayed, without decoding it.

    Single-band modes give 1 channel (palette images 3), modes with alpha 4,
    everything else 3; height and width follow the EXIF orientation.
    """
    with open_image(path) as image:
        width, height = _displayed_size(image)
        return image_channels(image), height, width


def pixel_divisor(image) -> float | None:
    """What the pixels are divided by to reach ``[0, 1]``; None for 8-bit images.

    Read from the mode and, for mode ``I``, from the file format and the raw
    mode Pillow decodes it with, before loading: Pillow 13 opens a 16-bit PNG
    as ``I;16`` (raw ``I;16B``), a 16-bit PGM and older Pillows' 16-bit PNGs as
    ``I`` (raw ``I;16B``), a 32-bit integer TIFF as ``I`` (raw ``I;32S``).
    """
    mode = image.mode
    if mode == "F":
        return 1.0
    if mode.startswith("I;16"):
        return 32767.0 if mode.startswith("I;16S") else 65535.0
    if mode == "I":  # PNG and PPM/PGM hold at most 16 bits (Pillow scales other PGM maxvals to 65535)
        raw = " ".join(str(tile.args if hasattr(tile, "args") else tile[3]) for tile in (image.tile or []))
        return 65535.0 if ";16" in raw or image.format in ("PNG", "PPM") else float(2**31 - 1)
    return None


def image_bit_depth(image) -> int:
    """Bits per sample of an opened (not yet loaded) PIL image: 8, 16 or 32 (``I`` and float ``F``)."""
    if image.mode == "F":
        return 32
    divisor = pixel_divisor(image)
    return 8 if divisor is None else (16 if divisor < 2**16 else 32)


def image_to_array(image, image_shape: tuple[int, int, int], divisor: float | None = None) -> np.ndarray:
    """Convert a (loaded) PIL image into a ``(C, H, W)`` array of ``image_shape``.

    8-bit images give ``uint8``, converted to the mode for ``C`` channels and
    resized with bilinear filtering. Higher bit depths give ``float32`` in
    ``[0, 1]`` units, resized in float (``divisor`` overrides the one read
    from the mode).
    """
    from PIL import Image

    channels, height, width = image_shape
    if channels not in MODES:
        raise ValueError(f"Image files can be read as 1, 3 or 4 channels; image_shape asks for {channels}.")
    divisor = divisor if divisor is not None else pixel_divisor(image)
    if divisor is None:
        target = MODES[channels]
        if image.mode not in ("L", "RGB", target):  # palette, alpha, CMYK...: convert at full size
            image = image.convert(target)
        if image.size != (width, height):  # resizing before a channel conversion keeps the copy small
            image = image.resize((width, height), resample=Image.BILINEAR)
        array = np.array(image.convert(target) if image.mode != target else image, dtype=np.uint8)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    values = np.asarray(image).astype(np.float32) / np.float32(divisor)
    plane = Image.fromarray(np.ascontiguousarray(values))
    if plane.size != (width, height):
        plane = plane.resize((width, height), resample=Image.BILINEAR)
    gray = np.asarray(plane, dtype=np.float32)[None]
    if channels == 1:
        return gray.copy()
    planes = [gray] * 3 + ([np.ones_like(gray)] if channels == 4 else [])
    return np.concatenate(planes)


def read_image(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Decode ``path`` into a ``(C, H, W)`` array of ``image_shape``.

    ``uint8`` for 8-bit files, ``float32`` in ``[0, 1]`` for higher bit
    depths (see the module docstring). The EXIF orientation is applied; JPEGs
    much larger than ``image_shape`` are decoded at a reduced scale.

    Raises
    ------
    ImageReadError
        A ``ValueError`` naming the file, when it is missing, not an image,
        truncated or above :func:`max_pixels`.
    """
    from PIL import ImageOps

    channels, height, width = image_shape
    if channels not in MODES:
        raise ValueError(f"Image files can be read as 1, 3 or 4 channels; image_shape asks for {channels}.")
    with open_image(path) as image:
        try:
            divisor = pixel_divisor(image)
            if image.format == "JPEG":
                swapped = image.getexif().get(_ORIENTATION) in _SWAPPED
                image.draft(None, (height, width) if swapped else (width, height))
            ImageOps.exif_transpose(image, in_place=True)  # no copy when there is nothing to turn
            image.load()
            return image_to_array(image, image_shape, divisor)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(path, f"{str(exc).strip() or type(exc).__name__}.") from None


def _check_one(path: str) -> str | None:
    try:
        with open_image(path) as image:
            try:
                image.load()
            except (OSError, SyntaxError, ValueError) as exc:
                return f"cannot decode it: {str(exc).strip() or type(exc).__name__}."
    except ImageReadError as exc:
        return exc.reason
    return None


def find_invalid_images(paths: Sequence[str], n_threads: int | None = None) -> list[tuple[str, str]]:
    """Find every file that cannot be decoded, by decoding it.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    n_threads : int or None
        Decoding threads (Pillow decodes without holding the GIL); default:
        the usable cores, at most 8.

    Returns
    -------
    list of (str, str)
        ``(path, reason)`` for each missing, unrecognised, truncated or
        too large (:func:`max_pixels`) file, in the order of ``paths``.
    """
    paths = [str(os.fspath(p)) for p in paths]
    workers = n_threads or min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        reasons = list(pool.map(_check_one, paths, chunksize=64))
    return [(p, r) for p, r in zip(paths, reasons) if r is not None]


def check_files_exist(paths: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first missing files, before any work starts."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ImageInputError(f"{len(missing)} image file(s) not found: {shown}{more}.")


def stack_images(arrays: Sequence[Any]) -> torch.Tensor:
    """Stack ``(C, H, W)`` images into one tensor of one dtype.

    All ``uint8`` stay ``uint8``; otherwise ``uint8`` images are scaled to
    ``[0, 1]`` and everything becomes ``float32``.
    """
    tensors = [torch.as_tensor(a) for a in arrays]
    if len({t.dtype for t in tensors}) > 1 or (tensors and tensors[0].dtype != torch.uint8):
        tensors = [to_float_images(t) for t in tensors]
    return torch.stack(tensors)


def collate_images(batch: list) -> Any:
    """DataLoader ``collate_fn``: the default collation, with images promoted to one dtype.

    Items are ``(image, target)`` or ``({"images": image, ...}, target)``; a
    batch mixing ``uint8`` and ``float32`` images becomes ``float32`` in
    ``[0, 1]`` units. Anything else is collated as torch does by default.
    """
    from torch.utils.data import default_collate

    def image_of(item):
        x = item[0] if isinstance(item, (tuple, list)) and item else None
        return x["images"] if isinstance(x, dict) and "images" in x else x

    images = [image_of(item) for item in batch]
    if all(isinstance(x, torch.Tensor) for x in images) and len({x.dtype for x in images}) > 1:
        floats = [to_float_images(x) for x in images]
        batch = [
            ({**item[0], "images": f} if isinstance(item[0], dict) else f, *item[1:])
            for item, f in zip(batch, floats)
        ]
    return default_collate(batch)


class ImageFileDataset(Dataset):
    """Images decoded from files on access, for data that need not fit in memory.

    Load it with ``collate_fn=collate_images`` so that batches mixing 8-bit
    and 16-bit files share one dtype.

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
