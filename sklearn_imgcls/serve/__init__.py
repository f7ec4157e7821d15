"""Serve a fitted classifier over HTTP: a JSON API and a web page (optional extra ``serve``).

>>> from sklearn_imgcls.serve import start_server          # doctest: +SKIP
>>> with start_server(clf, port=0) as server:              # doctest: +SKIP
...     print(server.url)                                   # POST images to server.url + "/predict"

``sklearn-imgcls serve model.safetensors`` does the same from the command
line. Endpoints: ``POST /predict`` (multipart images -> top-k classes and
probabilities per image; ``?cam=true`` adds a Grad-CAM overlay for one image),
``GET /health`` (with batching counters), ``GET /info`` (the model) and
``GET /`` (a page to drop images on). Needs ``pip install 'sklearn-imgcls[serve]'``
(FastAPI, uvicorn, python-multipart). Names are imported on first use, so
importing this package imports neither torch nor FastAPI.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"DEFAULTS": "settings", "check_installed": "settings", "create_app": "app", "RunningServer": "server",
         "serve": "server", "start_server": "server"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
