"""Kept so that plugins written as ``from sklearn_imgcls.specs import BackboneSpec`` keep working.

The specs live in :mod:`sklearn_imgcls.plugin.specs`; new plugins write
``from sklearn_imgcls.plugin import BackboneSpec``.
"""

from .plugin.specs import *  # noqa: F401,F403
from .plugin.specs import __all__  # noqa: F401
