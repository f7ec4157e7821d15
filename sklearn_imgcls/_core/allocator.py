"""Keep freed memory in the process between training steps instead of handing it back every step (glibc).

Each training step frees and re-allocates the same few large buffers
(gradients, activations; a 256 x 3136 float weight's gradient is 3.2 MB).
glibc's ``malloc`` returns the free memory at the top of its heap to the
operating system as soon as it exceeds the trim threshold, and the next step
takes it back page by page; in a virtual machine every such page fault and
unmapping is slow. On the reference 2-core VM that churn cost about a sixth
of the default network's training step (``benchmarks/bench_compute.py
--fit-vs-step``, results in ``benchmarks/RESULTS.md``). :func:`pad_heap` sets
glibc's ``M_TOP_PAD`` so that the heap keeps a bounded reserve (64 MiB by
default) when it trims. Allocation strategy never changes computed values.

The environment variable ``SKLEARN_IMGCLS_MALLOC_TOP_PAD`` sets the reserve
in bytes (``0`` leaves ``malloc`` alone); glibc's own ``MALLOC_TOP_PAD_``,
when set, wins.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

__all__ = ["DEFAULT_TOP_PAD", "ENVIRONMENT_VARIABLE", "pad_heap"]

#: bytes of freed heap kept for reuse when glibc trims
DEFAULT_TOP_PAD = 64 << 20
#: environment variable overriding :data:`DEFAULT_TOP_PAD` (0 disables)
ENVIRONMENT_VARIABLE = "SKLEARN_IMGCLS_MALLOC_TOP_PAD"
#: glibc's mallopt parameter number of M_TOP_PAD (malloc.h)
_M_TOP_PAD = -2


def _wanted_pad() -> int:
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    if value is None:
        return DEFAULT_TOP_PAD
    try:
        pad = int(value)
    except ValueError:
        pad = -1
    if pad < 0 or pad > 2**31 - 1:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a number of bytes from 0 to {2**31 - 1} "
                         f"(0 leaves malloc alone), got {value!r}; unset it for the default ({DEFAULT_TOP_PAD}).")
    return pad


@functools.lru_cache(maxsize=None)
def pad_heap() -> int:
    """Make glibc keep up to :data:`DEFAULT_TOP_PAD` bytes of freed heap (once per process).

    Returns
    -------
    int
        The reserve set, in bytes; 0 when nothing was changed (not glibc,
        ``SKLEARN_IMGCLS_MALLOC_TOP_PAD=0``, or ``MALLOC_TOP_PAD_`` set).

    Raises
    ------
    ValueError
        When ``SKLEARN_IMGCLS_MALLOC_TOP_PAD`` is not a number of bytes.
    """
    pad = _wanted_pad()
    if pad == 0 or not sys.platform.startswith("linux") or "MALLOC_TOP_PAD_" in os.environ:
        return 0
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: other C libraries' mallopt differ or do nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return 0
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return pad if mallopt(_M_TOP_PAD, pad) == 1 else 0
