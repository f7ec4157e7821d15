"""Load Fashion-MNIST from the Debian package's IDX files (no download).

``apt-get install -y dataset-fashion-mnist`` puts them in
``/usr/share/datasets/fashion-mnist``; ``FASHION_MNIST_DIR`` overrides.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def load_fashion_mnist(folder: str | None = None):
    """Return ``(X_train, y_train, X_test, y_test)``: uint8 (n, 28, 28) images, int64 labels."""
    folder = folder or os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)
    if not os.path.isdir(folder):
        raise SystemExit(
            f"Fashion-MNIST not found in {folder}: run `apt-get install -y dataset-fashion-mnist` "
            f"or set FASHION_MNIST_DIR to a folder with the four IDX .gz files."
        )
    parts = []
    for prefix in ("train", "t10k"):
        images = _read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"))
        labels = _read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
        parts += [images, labels]
    return tuple(parts)
