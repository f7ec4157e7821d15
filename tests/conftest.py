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


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by Selenium (chromium + chromium-driver, installed by scripts/setup_env.sh)."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and chromium, ("the browser tests need Debian's chromium and chromium-driver: "
                                      "apt-get install -y chromium chromium-driver (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                 "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()

