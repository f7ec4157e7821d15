"""Shared fixtures: small real datasets and an isolated registry."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sklearn_imgcls.plugin.registry import reset_registry

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: one torch thread each avoids oversubscribing the cores.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as flat rows scaled to [0, 1], and labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def digits_small(digits):
    """A stratified 400-image slice of the digits, for fast fits."""
    X, y = digits
    rng = np.random.default_rng(0)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), 40, replace=False) for c in range(10)]))
    return X[keep], y[keep]


@pytest.fixture
def fresh_registry(monkeypatch):
    """Forget the process registry before and after the test (env changes take effect)."""
    reset_registry()
    yield
    reset_registry()
