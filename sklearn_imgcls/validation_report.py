"""Dataset checks before training: ``validate(X, y)`` reports what would hurt a model.

One pass over the images finds unreadable, corrupt or truncated files (named),
NaN or infinite pixels, constant (blank) images, exact duplicates and near
duplicates (equal perceptual difference hash), duplicates shared with a test
set (leakage), the sizes and modes present, and the class balance. Problems
are listed per image; ``usable`` marks the images that can be trained on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

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


def _decode_files(paths: np.ndarray) -> tuple[list, list[dict]]:
    """Decode every file into a small grayscale array; collect problems instead of stopping."""
    from PIL import Image, ImageOps

    decoded, info = [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
                mode, size = image.mode, image.size
                gray = np.asarray(ImageOps.exif_transpose(image).convert("L"), dtype=np.float32)
            decoded.append(gray)
            info.append({"mode": mode, "size": size, "error": None})
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken files
            decoded.append(None)
            info.append({"mode": None, "size": None, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
    return decoded, info


def _file_features(paths: np.ndarray) -> dict:
    decoded, info = _decode_files(paths)
    n = len(paths)
    ok = np.array([d is not None for d in decoded])
    digests = np.array([hashlib.sha1(d.tobytes() + str(d.shape).encode()).hexdigest() if d is not None else ""
                        for d in decoded])
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
            "paths": paths}


def _array_features(X: Any, image_shape: Any) -> dict:
    from .data import as_image_data

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
            "spread": spread, "thumbs": _thumbnails(gray), "errors": [None] * n, "sizes": [shape] * n, "modes": [str(array.dtype)] * n, "paths": None}


def _features(X: Any, image_shape: Any) -> dict:
    if isinstance(X, (list, tuple, pd.Series)) or (isinstance(X, np.ndarray) and X.dtype.kind in "OU"):
        return _file_features(np.asarray(list(X), dtype=str))
    return _array_features(X, image_shape)


def validate(X: Any, y: Any = None, *, X_test: Any = None, image_shape: Any = None) -> ValidationReport:
    """Check a dataset (and optionally its test set) before training.

    Parameters
    ----------
    X : array-like or sequence of file paths
        The training images, in any layout the estimators accept.
    y : array-like or None
        Labels, for class counts, imbalance and label conflicts among duplicates.
    X_test : array-like, sequence of file paths or None
        Test images: duplicates shared with ``X`` are reported as leakage.
    image_shape : tuple of int or None
        ``(C, H, W)`` of flat rows.
    """
    train = _features(X, image_shape)
    n = len(train["ok"])
    if y is not None and len(y) != n:
        raise ValueError(f"X has {n} images but y has {len(y)} labels.")
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
    labels = None if y is None else np.asarray(y)
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
    summary: dict[str, Any] = {"images": n, "usable": int(usable.sum())}
    if X_test is not None:
        test = _features(X_test, image_shape)
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
    if len(sizes) > 1:
        summary["mixed_sizes"] = len(sizes)
    if labels is not None:
        counts = pd.Series(labels).value_counts()
        summary["class_counts"] = counts.to_dict()
        summary["imbalance_ratio"] = float(counts.max() / counts.min())
    issues = pd.DataFrame(rows, columns=["index", "source", "path", "issue", "detail"])
    summary["issues"] = issues["issue"].value_counts().to_dict()
    return ValidationReport(issues, summary, usable)
