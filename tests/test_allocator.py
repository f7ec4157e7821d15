"""glibc heap reserve kept between training steps (sklearn_imgcls._core.allocator)."""

import os
import subprocess
import sys

from sklearn_imgcls._core.allocator import DEFAULT_TOP_PAD, ENVIRONMENT_VARIABLE

PROBE = """
import numpy as np
from sklearn_imgcls import CNNClassifier
from sklearn_imgcls._core.allocator import pad_heap
before = pad_heap.cache_info().currsize
rng = np.random.default_rng(0)
CNNClassifier("simple_cnn", max_epochs=1, batch_size=8, validation_fraction=None, random_state=0).fit(
    rng.integers(0, 256, (16, 8, 8), dtype=np.uint8), np.arange(16) % 2)
print(before, pad_heap.cache_info().currsize, pad_heap())
"""


def probe(value):
    env = {k: v for k, v in os.environ.items() if k not in (ENVIRONMENT_VARIABLE, "MALLOC_TOP_PAD_")}
    if value is not None:
        env[ENVIRONMENT_VARIABLE] = value
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)


def test_fit_sets_the_heap_reserve_once():
    result = probe(None)
    assert result.returncode == 0, result.stderr
    expected = DEFAULT_TOP_PAD if sys.platform.startswith("linux") else 0  # glibc's mallopt
    assert result.stdout.split() == ["0", "1", str(expected)]


def test_zero_leaves_malloc_alone():
    result = probe("0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "0"]


def test_a_bad_value_is_a_value_error_naming_the_variable():
    result = probe("64MB")
    assert result.returncode != 0
    assert f"ValueError: {ENVIRONMENT_VARIABLE} must be a number of bytes" in result.stderr
