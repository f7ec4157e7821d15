"""Serving defaults and the check that the ``serve`` extra is installed (light: imports neither torch nor FastAPI)."""

from __future__ import annotations

import importlib

__all__ = ["DEFAULTS", "check_installed"]

#: default serving limits (also the ``serve`` command's defaults)
DEFAULTS = {"top_k": 5, "max_batch": 32, "max_wait_ms": 5.0, "max_upload_bytes": 20 * 2**20,
            "max_pixels": 16_000_000, "max_files": 32}

_NEEDED = (("fastapi", "FastAPI"), ("uvicorn", "uvicorn"), ("python_multipart", "python-multipart"))


def check_installed() -> None:
    """Raise :class:`ImportError` naming the fix when FastAPI, uvicorn or python-multipart is missing."""
    missing = []
    for module, package in _NEEDED:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ImportError(f"Serving needs {', '.join(missing)}, which is not installed; install the extra with "
                          f"pip install 'sklearn-imgcls[serve]'.")
