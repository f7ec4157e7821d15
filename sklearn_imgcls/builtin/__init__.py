"""Built-in components, each module a plugin registered like a third party's.

See :data:`sklearn_imgcls.plugin.discovery.DEFAULT_PLUGINS` for the list.
"""
