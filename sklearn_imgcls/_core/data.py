"""Input formats: turn whatever the user passes into one image representation.

Accepted ``X``:

* flat rows ``(n, C*H*W)``, each row an image flattened in ``(C, H, W)``
  order, with ``image_shape=(C, H, W)``; without ``image_shape`` a square
  row length is read as one grayscale ``(1, s, s)`` image;
* ``(n, H, W)`` grayscale images;
* ``(n, C, H, W)`` or ``(n, H, W, C)`` images (channels first when ambiguous);
* a list, array or pandas Series of image file paths, decoded lazily with
  Pillow and resized to one shape;
* a list of PIL images.

``uint8`` arrays are kept as ``uint8`` (scaled to ``[0, 1]`` inside the
network); everything else becomes ``float32``. Files and PIL images of 8 bits
decode to ``uint8``, those of 16 or 32 bits to ``float32`` in ``[0, 1]`` (see
:mod:`sklearn_imgcls._core.images`); a batch holding both is ``float32``.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from skorch.dataset import Dataset

from .errors import ImageInputError, ImageInputTypeError
from .images import (
    ImageFileDataset,
    ImageReadError,
    InvalidImagesError,
    check_files_exist,
    collate_images,
    find_invalid_images,
    image_channels,
    image_to_array,
    probe_image_shape,
    read_image,
    stack_images,
)
from .loader_workers import make_loader
from .network import to_float_images


__all__ = ["ImageData", "as_image_data", "channel_statistics", "check_image_shape", "naming_invalid_files"]

ImageShape = tuple[int, int, int]


@dataclass
class ImageData:
    """Images ready for the network: an in-memory tensor or a list of files.

    Attributes
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of every image.
    tensor : torch.Tensor or None
        ``(n, C, H, W)`` uint8 or float32 images held in memory.
    paths : numpy.ndarray or None
        File paths decoded on access (when ``tensor`` is None).
    """

    image_shape: ImageShape
    tensor: torch.Tensor | None = None
    paths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tensor) if self.tensor is not None else len(self.paths)

    @property
    def in_memory(self) -> bool:
        """Whether the images are held in memory."""
        return self.tensor is not None

    def dataset(self, y: torch.Tensor | None = None, sample_weight: torch.Tensor | None = None) -> Dataset:
        """Return a skorch dataset over the images (and encoded labels ``y``).

        With ``sample_weight`` the dataset's inputs are dicts ``{"images",
        "sample_weight"}``, skorch's convention for extra per-sample data.
        """
        if self.in_memory:
            X = self.tensor if sample_weight is None else {"images": self.tensor, "sample_weight": sample_weight}
            return Dataset(X, y)
        return ImageFileDataset(self.paths, y, self.image_shape, sample_weight)

    def batches(self, batch_size: int, num_workers: int = 0) -> Iterator[torch.Tensor]:
        """Yield consecutive batches of images, in order, for inference.

        Files are decoded in a :class:`torch.utils.data.DataLoader` with
        ``num_workers`` worker processes (0: in this process); a batch is
        ``uint8``, or ``float32`` in ``[0, 1]`` units when it holds a file of a
        higher bit depth. A file that cannot be decoded raises
        :class:`~sklearn_imgcls._core.images.InvalidImagesError` naming every such file.
        """
        if self.in_memory:
            for start in range(0, len(self), batch_size):
                yield self.tensor[start : start + batch_size]
            return
        workers = num_workers if len(self) > batch_size else 0  # one batch: workers only cost start-up
        loader = make_loader(self.dataset(), batch_size, workers, shuffle=False, collate_fn=collate_images)
        with naming_invalid_files(self):
            for images, _ in loader:
                yield images

    def sample(self, max_images: int) -> torch.Tensor:
        """Return up to ``max_images`` images, evenly spread, as a float tensor in [0, 1] units."""
        step = max(1, len(self) // max_images)
        if self.in_memory:
            images = self.tensor[::step][:max_images]
        else:
            with naming_invalid_files(self):
                images = stack_images([read_image(p, self.image_shape) for p in self.paths[::step][:max_images]])
        return to_float_images(images)


@contextmanager
def naming_invalid_files(data: ImageData) -> Iterator[None]:
    """Turn the first unreadable file met inside the block into one error naming every unreadable file.

    When an :class:`~sklearn_imgcls._core.images.ImageReadError` (raised in this
    process or in a DataLoader worker) leaves the block and ``data`` holds
    files, every file of ``data.paths`` is decoded
    (:func:`~sklearn_imgcls._core.images.find_invalid_images`) and one
    :class:`~sklearn_imgcls._core.images.InvalidImagesError` (a ``ValueError``)
    lists them with the fix. Example::

        with naming_invalid_files(data):
            net.fit(data.dataset(y), None)
    """
    try:
        yield
    except ImageReadError as exc:
        if data.paths is None:
            raise
        invalid = find_invalid_images(data.paths.tolist())
        if not invalid:  # e.g. a file repaired meanwhile: report what was met
            invalid = [(exc.path, exc.reason)]
        raise InvalidImagesError(invalid, len(data)) from None


def channel_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of ``(n, C, H, W)`` images.

    ``uint8`` images are measured in ``[0, 1]`` units, exactly and without a
    float copy, from a 256-bin histogram per channel.

    Returns
    -------
    mean, std : torch.Tensor
        float32 tensors of length ``C``.
    """
    channels = images.shape[1]
    if images.dtype == torch.uint8:
        levels = torch.arange(256, dtype=torch.float64) / 255
        means, stds = [], []
        for c in range(channels):
            counts = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
            mean = (counts * levels).sum() / counts.sum()
            means.append(mean)
            stds.append(((counts * (levels - mean) ** 2).sum() / counts.sum()).sqrt())
        return torch.stack(means).float(), torch.stack(stds).float()
    flat = images.transpose(0, 1).reshape(channels, -1)
    std, mean = torch.std_mean(flat.double() if flat.numel() < 2**24 else flat, dim=1, correction=0)
    return mean.float(), std.float()


def check_image_shape(image_shape: Any) -> ImageShape | None:
    """Validate an ``image_shape`` parameter: ``None``, ``(H, W)`` or ``(C, H, W)``.

    Returns
    -------
    tuple of int or None
        ``(C, H, W)``; ``(H, W)`` is read as one channel.
    """
    if image_shape is None:
        return None
    try:
        shape = tuple(int(v) for v in image_shape)
        valid = len(shape) in (2, 3) and all(v >= 1 for v in shape)
        valid = valid and all(int(v) == v for v in image_shape)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ImageInputError(
            f"image_shape must be (channels, height, width) or (height, width) of positive "
            f"integers, got {image_shape!r}."
        )
    return shape if len(shape) == 3 else (1, *shape)


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _is_pil(value: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(value, Image.Image)


def _first(X: Any) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[0] if len(X) else None
    return X[0] if len(X) else None


def as_image_data(
    X: Any,
    image_shape: Any = None,
    *,
    fitted_shape: ImageShape | None = None,
    estimator_name: str = "the estimator",
) -> ImageData:
    """Resolve any accepted input into :class:`ImageData`.

    Parameters
    ----------
    X : array-like, sequence of paths or sequence of PIL images
        See the module docstring.
    image_shape : tuple of int or None
        The estimator's ``image_shape`` parameter.
    fitted_shape : tuple of int or None
        ``(C, H, W)`` learned in ``fit``; at prediction time inputs must match
        it (files and PIL images are converted to it).
    estimator_name : str
        Named in the error for a fitted estimator given the wrong feature count.

    Returns
    -------
    ImageData

    Raises
    ------
    ValueError, TypeError
        For empty input, wrong dimensions, shapes inconsistent with
        ``image_shape``, NaN or infinity, and unreadable files; the message
        says what was wrong and how to fix it.
    """
    shape = fitted_shape or check_image_shape(image_shape)
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise ImageInputTypeError(
            "Sparse data is not supported: images must be dense. Convert with X.toarray() first."
        )
    if _is_path(X):
        raise ImageInputTypeError(
            f"X is a single path ({str(X)!r}); pass a list of image file paths, e.g. [{str(X)!r}]."
        )
    if hasattr(X, "to_numpy") and getattr(X, "ndim", 1) == 2:  # pandas DataFrame
        X = X.to_numpy()
    if isinstance(X, (list, tuple)) or (hasattr(X, "iloc") and getattr(X, "ndim", 2) == 1):
        if len(X) == 0:
            raise ImageInputError("X is empty: found 0 images, while at least 1 is required.")
        first = _first(X)
        if _is_path(first):
            return _from_paths(X, shape)
        if _is_pil(first):
            return _from_pil(X, shape)
    array = np.asarray(X)
    if array.dtype.kind in "OUS" and array.ndim == 1 and len(array) and _is_path(array[0]):
        return _from_paths(array, shape)
    return _from_array(array, shape, estimator_name if fitted_shape is not None else None)


def _from_paths(X: Any, shape: ImageShape | None) -> ImageData:
    paths = np.asarray([os.fspath(p) if _is_path(p) else p for p in X], dtype=object)
    bad = [i for i, p in enumerate(paths) if not isinstance(p, str)]
    if bad:
        raise ImageInputTypeError(
            f"X mixes file paths with other values (item {bad[0]} is {paths[bad[0]]!r}); "
            f"pass only paths, or only arrays."
        )
    check_files_exist(paths)
    return ImageData(shape or probe_image_shape(paths[0]), paths=paths)


def _from_pil(X: Any, shape: ImageShape | None) -> ImageData:
    images = list(X)
    if not all(_is_pil(im) for im in images):
        raise ImageInputTypeError("X mixes PIL images with other values; pass only PIL images.")
    if shape is None:
        first = images[0]
        shape = (1 if image_channels(first) == 1 else 3, first.height, first.width)
    # 16-bit, 32-bit integer and float images keep their range (float32 in [0, 1]); see images.py
    return ImageData(shape, tensor=stack_images([image_to_array(im, shape) for im in images]))


def _infer_flat_shape(n_columns: int) -> ImageShape:
    side = math.isqrt(n_columns)
    if side * side == n_columns:
        return (1, side, side)
    warnings.warn(
        f"X has {n_columns} columns, which is not a square number, so each row is read as a "
        f"1x{n_columns} grayscale image. Pass image_shape=(channels, height, width) to say how "
        f"the rows were flattened.",
        UserWarning,
        stacklevel=4,
    )
    return (1, 1, n_columns)


def _channels_last(array: np.ndarray, shape: ImageShape | None) -> bool:
    dims = array.shape[1:]
    if shape is not None:
        if dims == shape:
            return False
        if dims == (shape[1], shape[2], shape[0]):
            return True
        raise ImageInputError(
            f"X holds images of shape {dims}, which matches image_shape={shape} neither as "
            f"(C, H, W) nor as (H, W, C). Fix image_shape or the data."
        )
    first, last = dims[0] in (1, 3, 4), dims[2] in (1, 3, 4)
    if first or not last:
        if not first:
            raise ImageInputError(
                f"Cannot tell which axis of the image shape {dims} holds the channels (expected "
                f"1, 3 or 4 in the first or last place). Pass image_shape=(C, H, W)."
            )
        return False
    return True


def _from_array(array: np.ndarray, shape: ImageShape | None, fitted_by: str | None) -> ImageData:
    if array.dtype.kind in "OUSV":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ImageInputTypeError(
                f"X must hold numbers (images) or image file paths; got an array of dtype "
                f"{array.dtype} whose values cannot be read as numbers ({exc})."
            ) from None
    if array.dtype.kind == "c":
        raise ImageInputError("Complex data not supported: X holds complex numbers; images must be real-valued.")
    if array.ndim < 2 or array.ndim > 4:
        raise ImageInputError(
            f"Expected a 2D array of flattened images, (n, H, W), (n, C, H, W) or (n, H, W, C) "
            f"images, got a {array.ndim}D array of shape {array.shape} instead. Reshape your "
            f"data, e.g. X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for one image."
        )
    if array.shape[0] == 0:
        raise ImageInputError(f"Found array with 0 sample(s) (shape={array.shape}) while a minimum of 1 is required.")
    if array.ndim == 2:
        n_columns = array.shape[1]
        if n_columns == 0:
            raise ImageInputError(f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required.")
        if shape is None:
            shape = _infer_flat_shape(n_columns)
        elif math.prod(shape) != n_columns:
            if fitted_by:
                raise ImageInputError(
                    f"X has {n_columns} features, but {fitted_by} is expecting "
                    f"{math.prod(shape)} features as input (images of shape {shape})."
                )
            raise ImageInputError(
                f"image_shape={shape} describes {math.prod(shape)} values per image, but X has "
                f"{n_columns} columns. Pass the (channels, height, width) the rows were "
                f"flattened from."
            )
        array = array.reshape(-1, *shape)
    elif array.ndim == 3:
        if shape is not None and (1, *array.shape[1:]) != shape:
            raise ImageInputError(
                f"X holds grayscale images of shape {array.shape[1:]}, but image_shape is {shape}."
            )
        array = array[:, None]
    elif _channels_last(array, shape):
        array = array.transpose(0, 3, 1, 2)
    if array.dtype != np.uint8:
        array = array.astype(np.float32, copy=False)
        finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ImageInputError(
                f"Input X contains NaN or infinity in {len(bad)} image(s) (first at index "
                f"{bad[0]}). Remove or impute those values first."
            )
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return ImageData(tuple(array.shape[1:]), tensor=torch.from_numpy(array))
