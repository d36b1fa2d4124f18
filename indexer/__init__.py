"""dtindex: keeps an image gallery tagged by ONNX tagging models, incrementally.

The library API (loaded lazily, so `import indexer` stays cheap for the decoder
processes that import it):

- `load_model(path_or_name, *, config=None, providers=None) -> Model`, whose
  `tag(paths, *, threshold=None, batch=None)` yields `(path, {tag: score})` in order;
- `scan(roots, *, db, config=None, models=(), batch=None) -> Counts`, the counts
  `dtindex scan --json` prints;
- `Index.open(db=None, config=None)`: what every command does, as methods (`indexer.core`);
- the errors a caller can catch: `DtindexError` and its kinds.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing alone would take milliseconds
if TYPE_CHECKING:
    from typing import Any

    from indexer.core import Index
    from indexer.errors import (
        ConfigError,
        DecodeError,
        DtindexError,
        Incomplete,
        ModelError,
        ScanError,
        StoreError,
        UsageError,
    )
    from indexer.gallery.jobs import Counts
    from indexer.library import Model, load_model, scan

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "Counts",
    "DecodeError",
    "DtindexError",
    "Incomplete",
    "Index",
    "Model",
    "ModelError",
    "ScanError",
    "StoreError",
    "UsageError",
    "load_model",
    "scan",
]
# The errors are lazy too: the `dtindex` command imports this package before its entry
# (`indexer.__main__`) can make Ctrl-C quiet, so it runs nothing but these lines.
_LIBRARY = {"Counts", "Model", "load_model", "scan"}


def __getattr__(name: str) -> Any:
    if name == "Index":
        from indexer.core import Index

        return Index
    if name in _LIBRARY:
        from indexer import library

        return getattr(library, name)
    if name in __all__:
        from indexer import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
