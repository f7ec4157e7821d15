"""Dataset checks before training: ``validate(X, y)`` reports what would hurt a model.

One pass over the images finds unreadable, corrupt or truncated files (named),
NaN or infinite pixels, constant (blank) images, exact duplicates and near
duplicates (equal perceptual difference hash), duplicates shared with a test
set (leakage), the sizes and modes present, and the class balance. Problems
are listed per image; ``usable`` marks the images that can be trained on.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .metrics_multilabel import label_names, labels_to_indicator, looks_multilabel

__all__ = ["ValidationReport", "validate"]


@dataclass
class ValidationReport:
    """What :func:`validate` found.

    Attributes
    ----------
    issues : pandas.DataFrame
        One row per problem: ``index``, ``source`` (``"train"`` or ``"test"``),
        ``path`` (files only), ``issue`` and ``detail``.
    summary : dict
        Counts per issue, image sizes and modes, class counts and imbalance ratio.
    usable : numpy.ndarray of bool
        Training images that decoded and hold finite pixels.
    """

    issues: pd.DataFrame
    summary: dict
    usable: np.ndarray = field(repr=False)

    def __str__(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.summary.items()]
        return "\n".join(lines) + (f"\n{self.issues.to_string(index=False)}" if len(self.issues) else "\nno issues")


_THUMB = 16
_NEAR_TOLERANCE = 0.015  # mean absolute thumbnail difference, as a share of the pixel range


def _thumbnails(gray: torch.Tensor) -> np.ndarray:
    """``(N, 16*16)`` area-averaged thumbnails scaled to [0, 1] per image, for confirming near duplicates."""
    small = F.interpolate(gray, size=(_THUMB, _THUMB), mode="area").flatten(1)
    low, high = small.min(dim=1, keepdim=True).values, small.max(dim=1, keepdim=True).values
    return ((small - low) / (high - low).clamp_min(1e-12)).numpy()


def _dhash(gray: torch.Tensor) -> np.ndarray:
    """64-bit difference hashes of ``(N, 1, H, W)`` float images (Krawetz's dHash)."""
    small = F.interpolate(gray, size=(8, 9), mode="area")[:, 0]
    bits = (small[:, :, 1:] > small[:, :, :-1]).reshape(len(gray), 64).numpy()
    return np.packbits(bits, axis=1).view(">u8").ravel()


_MAX_SIDE = 256  # images are reduced to about this size before hashing, so big files cost little memory


def _decode_one(path: str) -> tuple[np.ndarray, dict]:
    """Decode one file: ``(gray float32 in [0, 1] at <= ~2 x 256 px, info)``; ImageReadError when it cannot."""
    from PIL import Image, ImageOps

    from ._core.images import ImageReadError, image_bit_depth, open_image, pixel_divisor

    with open_image(path) as image:
        mode, depth, divisor = image.mode, image_bit_depth(image), pixel_divisor(image)
        try:
            ImageOps.exif_transpose(image, in_place=True)
            image.load()
            digest = hashlib.sha1(f"{image.mode}{image.size}".encode())
            for top in range(0, image.height, 256):  # in strips: no second full-size copy
                digest.update(image.crop((0, top, image.width, min(image.height, top + 256))).tobytes())
            digest = digest.hexdigest()
            if divisor is None:
                gray, scale = (image if image.mode == "L" else image.convert("L")), 255.0
            else:
                gray, scale = Image.fromarray(np.asarray(image, dtype=np.float32) / np.float32(divisor)), 1.0
            factor = max(1, max(gray.size) // _MAX_SIDE)
            if factor > 1:
                gray = gray.reduce(factor)
            values = np.asarray(gray, dtype=np.float32) / np.float32(scale)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(path, f"cannot decode it: {str(exc).strip() or type(exc).__name__}.") from None
    return values, {"mode": mode, "bit_depth": depth, "size": image.size, "digest": digest, "error": None}


def _decode_files(paths: np.ndarray) -> tuple[list, list[dict]]:
    """Decode every file into a small grayscale array; collect problems instead of stopping."""
    from ._core.images import ImageReadError

    decoded, info = [], []
    for path in paths:
        try:
            gray, details = _decode_one(path)
        except ImageReadError as exc:
            gray, details = None, {"mode": None, "bit_depth": None, "size": None, "digest": "", "error": exc.reason}
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken files
            line = str(exc).splitlines()[0] if str(exc) else ""
            gray, details = None, {"mode": None, "bit_depth": None, "size": None, "digest": "",
                                   "error": f"{type(exc).__name__}: {line}"}
        decoded.append(gray)
        info.append(details)
    return decoded, info


def _file_features(paths: np.ndarray) -> dict:
    decoded, info = _decode_files(paths)
    n = len(paths)
    ok = np.array([d is not None for d in decoded])
    digests = np.array([i["digest"] for i in info])
    hashes = np.zeros(n, dtype=">u8")
    spread = np.full(n, np.nan)
    thumbs = np.zeros((n, _THUMB * _THUMB), dtype=np.float32)
    for i, gray in enumerate(decoded):
        if gray is not None:
            tensor = torch.from_numpy(gray)[None, None]
            hashes[i] = _dhash(tensor)[0]
            thumbs[i] = _thumbnails(tensor)[0]
            spread[i] = float(gray.max() - gray.min())
    return {"ok": ok, "finite": np.ones(n, dtype=bool), "digest": digests, "dhash": hashes, "spread": spread,
            "thumbs": thumbs,
            "errors": [i["error"] for i in info], "sizes": [i["size"] for i in info], "modes": [i["mode"] for i in info],
            "bit_depths": [i["bit_depth"] for i in info], "paths": paths}


def _array_features(X: Any, image_shape: Any) -> dict:
    from ._core.data import as_image_data

    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"validate() needs numeric arrays or image files, got an array of dtype {array.dtype}.")
    n = len(array)
    flat = array.reshape(n, -1)
    finite = np.isfinite(flat).all(axis=1) if array.dtype.kind == "f" else np.ones(n, dtype=bool)
    clean = np.where(np.isfinite(flat), flat, 0).reshape(array.shape).astype(array.dtype, copy=False)
    images = as_image_data(clean, image_shape).tensor.float()
    gray = images.mean(dim=1, keepdim=True)
    digests = np.array([hashlib.sha1(row.tobytes()).hexdigest() for row in np.ascontiguousarray(flat)])
    spread = (gray.flatten(1).max(dim=1).values - gray.flatten(1).min(dim=1).values).numpy()
    shape = tuple(images.shape[1:])
    return {"ok": np.ones(n, dtype=bool), "finite": finite, "digest": digests, "dhash": _dhash(gray),
            "spread": spread, "thumbs": _thumbnails(gray), "errors": [None] * n, "sizes": [shape] * n, "modes": [str(array.dtype)] * n,
            "bit_depths": [array.dtype.itemsize * 8] * n, "paths": None}


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _features(X: Any, image_shape: Any, name: str = "X") -> dict:
    if hasattr(X, "__len__") and not hasattr(X, "toarray") and len(X) == 0:
        raise ValueError(f"{name} is empty: found 0 images, while validate() needs at least 1.")
    if isinstance(X, (list, tuple, pd.Series)) or (isinstance(X, np.ndarray) and X.dtype.kind in "OU"):
        items = list(X)
        kinds = [_is_path(item) for item in items]
        if all(kinds):
            return _file_features(np.asarray([os.fspath(item) for item in items], dtype=str))
        if any(kinds):
            first = kinds.index(not kinds[0])
            raise TypeError(
                f"{name} mixes file paths with other values (item {first} is a {type(items[first]).__name__}, "
                f"item 0 a {type(items[0]).__name__}); pass only file paths, or only arrays."
            )
    return _array_features(X, image_shape)


def _label_keys(y: Any) -> np.ndarray:
    """``y`` as an array with one hashable entry per image: multi-label rows become tuples of their labels."""
    if not looks_multilabel(y):
        return np.asarray(y)
    names = label_names(y)
    rows = labels_to_indicator(y, names).astype(bool)
    keys = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        keys[i] = tuple(label for label, on in zip(names, row) if on)
    return keys


def validate(X: Any, y: Any = None, *, X_test: Any = None, image_shape: Any = None) -> ValidationReport:
    """Check a dataset (and optionally its test set) before training.

    Parameters
    ----------
    X : array-like or sequence of file paths
        The training images, in any layout the estimators accept.
    y : array-like or None
        Labels, for class counts, imbalance and label conflicts among duplicates.
        Multi-label targets (a 0/1 matrix or one list of labels per image)
        count images per label; duplicates conflict when their label sets differ.
        A missing label (``None`` or NaN) is reported as a ``missing_label``
        issue, counted in ``summary["missing_labels"]`` and marks the image
        not usable; ``class_counts`` counts the labelled images.
    X_test : array-like, sequence of file paths or None
        Test images: duplicates shared with ``X`` are reported as leakage.
    image_shape : tuple of int or None
        ``(C, H, W)`` of flat rows.

    Returns
    -------
    ValidationReport
        ``summary`` also holds the Pillow ``modes`` and the ``bit_depths``
        (bits per sample: 8, 16 or 32) found; 16-bit files are read with
        their full range.

    Raises
    ------
    ValueError
        For an empty ``X`` or ``X_test``, or labels of another length.
    TypeError
        For a list mixing file paths with arrays, or non-numeric arrays.
    """
    train = _features(X, image_shape)
    n = len(train["ok"])
    if y is not None and len(y) != n:
        raise ValueError(f"X has {n} images but y has {len(y)} labels.")
    multi = y is not None and looks_multilabel(y)
    rows: list[dict] = []

    def add(index, issue, detail, source="train", paths=train["paths"]):
        rows.append({"index": int(index), "source": source, "path": None if paths is None else str(paths[index]),
                     "issue": issue, "detail": detail})

    for i, error in enumerate(train["errors"]):
        if error:
            add(i, "unreadable", error)
    for i in np.flatnonzero(~train["finite"]):
        add(i, "nan_or_inf", "pixels that are NaN or infinite")
    usable = train["ok"] & train["finite"]
    for i in np.flatnonzero(usable & (train["spread"] <= 1e-6)):
        add(i, "constant", "every pixel has the same value")
    labels = None if y is None else _label_keys(y)
    missing = np.zeros(n, dtype=bool) if labels is None else pd.isna(pd.Series(list(labels), dtype=object)).to_numpy()
    for i in np.flatnonzero(missing):
        add(i, "missing_label", "the label is None or NaN; label the image or leave it out")
    exact_groups: dict[str, list[int]] = {}
    for i in np.flatnonzero(usable):
        exact_groups.setdefault(train["digest"][i], []).append(int(i))
    exact_members = set()
    for members in exact_groups.values():
        if len(members) > 1:
            exact_members.update(members)
            conflict = labels is not None and len(set(labels[members].tolist())) > 1
            for i in members[1:]:
                add(i, "duplicate_conflicting_labels" if conflict else "duplicate", f"same pixels as image {members[0]}")
    near_groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(usable & (train["spread"] > 1e-6)):
        near_groups.setdefault(int(train["dhash"][i]), []).append(int(i))
    thumbs = train["thumbs"]
    for members in near_groups.values():
        # equal hashes are candidates; a near duplicate must also look alike pixel by pixel
        candidates = [m for m in members if m not in exact_members]
        for position, i in enumerate(candidates):
            for j in members:
                if j != i and (j < i or j in exact_members) and \
                        float(np.abs(thumbs[i] - thumbs[j]).mean()) <= _NEAR_TOLERANCE:
                    add(i, "near_duplicate", f"looks like image {j} (equal perceptual hash, thumbnails within "
                                             f"{_NEAR_TOLERANCE:.0%})")
                    break
    usable = usable & ~missing
    summary: dict[str, Any] = {"images": n, "usable": int(usable.sum())}
    if X_test is not None:
        test = _features(X_test, image_shape, "X_test")
        train_digests = {d: i for i, d in zip(range(n), train["digest"]) if usable[i]}
        for j, digest in enumerate(test["digest"]):
            if test["ok"][j] and digest in train_digests:
                add(j, "test_duplicate_of_train", f"same pixels as training image {train_digests[digest]}",
                    source="test", paths=test["paths"])
        for j, error in enumerate(test["errors"]):
            if error:
                add(j, "unreadable", error, source="test", paths=test["paths"])
        summary["test_images"] = len(test["ok"])
    sizes = Counter(s for s in train["sizes"] if s is not None)
    modes = Counter(m for m in train["modes"] if m is not None)
    summary["sizes"] = dict(sizes.most_common(5))
    summary["modes"] = dict(modes)
    depths = Counter(int(b) for b in train["bit_depths"] if b is not None)
    summary["bit_depths"] = dict(sorted(depths.items()))
    if len(sizes) > 1:
        summary["mixed_sizes"] = len(sizes)
    if len(depths) > 1:
        summary["mixed_bit_depths"] = len(depths)
    if labels is not None:
        kept = list(labels[~missing])
        counts = pd.Series([label for row in kept for label in row] if multi else kept, dtype=object).value_counts()
        summary["class_counts"] = {(k.item() if hasattr(k, "item") else k): int(v) for k, v in counts.items()}
        if missing.any():
            summary["missing_labels"] = int(missing.sum())
        if len(counts):
            summary["imbalance_ratio"] = float(counts.max() / counts.min())
    issues = pd.DataFrame(rows, columns=["index", "source", "path", "issue", "detail"])
    summary["issues"] = issues["issue"].value_counts().to_dict()
    return ValidationReport(issues, summary, usable)
