"""Test-only plugin implementing a hook that sklearn-imgcls does not define."""

from sklearn_imgcls.plugin import hookimpl


@hookimpl
def register_optimisers():
    return []
