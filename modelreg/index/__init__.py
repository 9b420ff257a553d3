"""The query index: a derivable SQLite database of a registry's versions and events, in the cache directory.

Public entry points (imported from the submodules on use):

- :func:`modelreg.index.export.site_data` -- models, versions and recent events in one call (the static site);
- :func:`modelreg.index.db.open_index` -- the current :class:`~modelreg.index.db.Index` of a
  registry (None when the cache directory cannot hold one: callers then read the registry);
- :meth:`Index.records`, :meth:`Index.model_versions`, :meth:`Index.models`,
  :meth:`Index.latest_events` -- read it; every call first brings it up to date
  (:mod:`modelreg.index.refresh`) and never answers from a model whose stamps changed.

docs/discovery.md ("The index") documents the file, its schema version and what it can miss.
"""
