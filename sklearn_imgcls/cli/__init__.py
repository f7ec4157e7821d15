"""The ``sklearn-imgcls`` console script: argument parsing (:mod:`.main`),
the commands it runs (:mod:`.commands`), model files (:mod:`.model_files`)
and the quickstart demo (:mod:`.demo`)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
