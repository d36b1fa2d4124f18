"""The core: `Index`, the one object the commands and Python callers work through, and
the records its methods take and return (`core.records`).

Loaded lazily, as `indexer` is: the CLI's light modules (`cli.stopping`, imported before
any command is chosen) import `indexer.core.stopping`, and `dtindex --help` must not
import SQLAlchemy or ONNX Runtime through this package.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing alone would take milliseconds
if TYPE_CHECKING:
    from typing import Any

    from indexer.core.index import Index
    from indexer.core.records import (
        Counts,
        Edits,
        Exported,
        Forgotten,
        ModelInfo,
        Models,
        Near,
        Pruned,
        Rules,
        Shown,
        Status,
        Totals,
        WatchOptions,
    )

__all__ = [
    "Counts",
    "Edits",
    "Exported",
    "Forgotten",
    "Index",
    "ModelInfo",
    "Models",
    "Near",
    "Pruned",
    "Rules",
    "Shown",
    "Status",
    "Totals",
    "WatchOptions",
]


def __getattr__(name: str) -> Any:
    if name == "Index":
        from indexer.core.index import Index

        return Index
    if name in __all__:
        from indexer.core import records

        return getattr(records, name)
    raise AttributeError(f"module 'indexer.core' has no attribute {name!r}")
