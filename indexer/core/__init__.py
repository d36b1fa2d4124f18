"""The core: `Index`, the one object the commands and Python callers work through, and
the records its methods return (`core.records`)."""

from __future__ import annotations

from indexer.core.index import Index
from indexer.core.records import (
    Exported,
    Forgotten,
    ModelInfo,
    Models,
    Near,
    Pruned,
    Rules,
    Shown,
    Status,
)

__all__ = [
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
]
