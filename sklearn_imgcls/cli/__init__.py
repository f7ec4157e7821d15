"""The ``sklearn-imgcls`` console script.

Argument parsing (:mod:`.main`, with the options several commands share
defined once in :mod:`.options`), the commands it runs (:mod:`.commands`,
:mod:`.train_commands`), what they read (:mod:`.inputs`), model files
(:mod:`.model_files`) and the quickstart demo (:mod:`.demo`).
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
