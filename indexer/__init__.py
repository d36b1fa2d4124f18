"""dtindex: keeps an image gallery tagged by ONNX tagging models, incrementally.

The library API (loaded lazily, so `import indexer` stays cheap for the decoder
processes that import it):

- `load_model(path_or_name, *, config=None, providers=None) -> Model`, whose
  `tag(paths, *, threshold=None, batch=None)` yields `(path, {tag: score})` in order;
- `scan(roots, *, db, config=None, models=(), batch=None) -> Counts`, the counts
  `dtindex scan --json` prints;
- the errors a caller can catch: `DtindexError` and its kinds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from indexer.gallery.jobs import Counts
    from indexer.library import Model, load_model, scan

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "Counts",
    "DecodeError",
    "DtindexError",
    "Incomplete",
    "Model",
    "ModelError",
    "ScanError",
    "StoreError",
    "UsageError",
    "load_model",
    "scan",
]
_LAZY = {"Counts", "Model", "load_model", "scan"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from indexer import library

        return getattr(library, name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
