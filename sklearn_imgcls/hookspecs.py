"""Kept so that plugins written as ``from sklearn_imgcls.hookspecs import hookimpl`` keep working.

The contract lives in :mod:`sklearn_imgcls.plugin`; new plugins write
``from sklearn_imgcls.plugin import hookimpl``.
"""

from .plugin.hookspecs import *  # noqa: F401,F403
from .plugin.hookspecs import __all__  # noqa: F401
