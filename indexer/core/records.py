"""What `Index`'s methods take and return: frozen records, the same for the CLI (which
formats them) and for a Python caller. Records a lower layer already defines (`Pruned`,
`Forgotten`, `FailureRow`, `Coverage` of the store; `Counts`, `Headway`, `Totals`,
`WatchOptions`, `WatchListener` of the gallery; `Edits`, `Scored` of the export) are
those, re-exported here so that the CLI needs no other layer, not copies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from indexer.export.selection import Edits
from indexer.export.thresholds import Scored
from indexer.gallery.following import Totals, WatchListener, WatchOptions
from indexer.gallery.headway import Headway, Listener
from indexer.gallery.jobs import Counts
from indexer.store.maintenance import Forgotten, Pruned
from indexer.store.queries import Coverage, FailureRow

__all__ = [
    "Counts",
    "Coverage",
    "Edits",
    "Exported",
    "FailureRow",
    "Forgotten",
    "Headway",
    "Listener",
    "ModelInfo",
    "ModelResults",
    "Models",
    "Near",
    "Pruned",
    "RootStatus",
    "Rules",
    "Scored",
    "Shown",
    "Status",
    "StoredVersion",
    "Totals",
    "WatchListener",
    "WatchOptions",
]


@dataclass(frozen=True)
class RootStatus:
    path: bytes
    files: int
    scanned_ns: int | None  # None: never scanned to the end


@dataclass(frozen=True)
class Status:
    """The roots, the counts, and the failures (up to the number asked for). `failed`
    counts pictures with no result of a configured model because it failed on them;
    models the config no longer names are counted apart (`failed_unconfigured`)."""

    database: str
    roots: tuple[RootStatus, ...]
    files: int
    contents: int
    unreadable: int
    failed: int
    failed_by_model: Mapping[str, int]
    failed_unconfigured: Mapping[str, int]
    failures: tuple[FailureRow, ...]
    configured: frozenset[str]  # the models the config runs or names
    more_failures: bool = False  # failures beyond those listed


@dataclass(frozen=True)
class ModelResults:
    """One model's stored tags of a picture, best first, from the version that counts
    (none where no score passed the threshold asked for: it tagged the picture)."""

    model: str
    version: str
    tags: tuple[Scored, ...]


@dataclass(frozen=True)
class Shown:
    """A picture by one of its paths: its content (no sha1: not read, or unreadable with
    `error`), the model versions that failed on it (model, version, reason) and the tags
    of each model that tagged it."""

    path: bytes
    sha1: str | None
    width: int | None
    height: int | None
    error: str | None
    failed: tuple[tuple[str, str, str], ...]
    results: tuple[ModelResults, ...]


@dataclass(frozen=True)
class Near:
    """A picture like the one asked about: cosine similarity (1: the same vector) and
    its first path."""

    score: float
    path: bytes


@dataclass(frozen=True)
class Rules:
    """Thresholds asked for instead of the model table's: one for every tag without its
    own (`threshold`), per category (`categories`), the authors' per-tag ones, MCut.
    `spelled` names how the caller asked for each category, for messages (the CLI:
    `--general`)."""

    threshold: float | None = None
    categories: Mapping[str, float] = field(default_factory=dict)
    tag_thresholds: bool = False
    mcut: bool = False
    spelled: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    """A model of the config (or the built-in palette): its settings, the version its
    files make, and its coverage of the index (None where there is no index). `error`:
    its files cannot be read, and nothing past `scan` is known."""

    name: str
    enabled: bool
    scan: bool  # a scan without --model runs it
    error: str | None = None
    title: str = ""
    family: str = ""
    version: str = ""
    tags: int = 0
    input: str = ""
    categories: Mapping[str, int] = field(default_factory=dict)
    threshold: float = 0.0
    general: float | None = None
    character: float | None = None
    coverage: Coverage | None = None

    def as_dict(self) -> dict[str, object]:
        """The object `dtindex models --json` prints."""
        row: dict[str, object] = {"name": self.name, "enabled": self.enabled, "scan": self.scan}
        if self.error is not None:
            return {**row, "error": self.error}
        row.update(
            title=self.title, family=self.family, version=self.version, tags=self.tags,
            input=self.input, categories=dict(self.categories), threshold=self.threshold,
            general=self.general, character=self.character,
        )  # fmt: skip
        if self.coverage is not None:
            cov = self.coverage
            row.update(
                pictures=cov.present,
                tagged=cov.done,
                failed=cov.failed,
                todo=cov.present - cov.done - cov.failed,
            )
        return row


@dataclass(frozen=True)
class StoredVersion:
    model: str
    version: str
    title: str
    tags: int


@dataclass(frozen=True)
class Models:
    """The models, and every version the index stores (the current ones among them)."""

    models: tuple[ModelInfo, ...]
    stored: tuple[StoredVersion, ...]


@dataclass(frozen=True)
class Exported:
    """A picture as an export gives it: its SHA-1, its files (none where the export was
    asked for without them), the tags that pass, best first, and the root each file lies
    under (`roots[i]` holds `paths[i]`)."""

    content_id: int
    sha1: str
    paths: tuple[bytes, ...]
    tags: tuple[Scored, ...]
    roots: tuple[bytes, ...] = ()
