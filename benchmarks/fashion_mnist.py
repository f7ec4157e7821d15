"""Fashion-MNIST for the benchmarks, from the package's loader (no download).

``apt-get install -y dataset-fashion-mnist`` puts the IDX files in
``/usr/share/datasets/fashion-mnist``; ``FASHION_MNIST_DIR`` overrides.
"""

from __future__ import annotations

from sklearn_imgcls.datasets import load_fashion_mnist

__all__ = ["load_fashion_mnist"]
