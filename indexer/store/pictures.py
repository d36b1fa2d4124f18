"""One picture by its path, as `show` and `similar` read it: the file's row, the stored
scores of each model that tagged it, the versions that failed on it, its nearest
neighbours' first paths.

A content counts under the version `store.current.chosen_version` picks for it (the
configured one where it has a result, else the newest), as the export does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text

from indexer.store.current import chosen_version


@dataclass(frozen=True)
class FileRow:
    """A file the index lists: its picture (None where its bytes could not be read yet
    or at all) and why it could not be read."""

    content_id: int | None
    sha1: str | None
    width: int | None
    height: int | None
    error: str | None


@dataclass(frozen=True)
class Failed:
    """A model version that failed on a picture, with the reason and its kind."""

    model: str
    version: str
    error: str
    kind: str | None


_FILE = text(
    "SELECT f.content_id, c.sha1, c.width, c.height, f.error FROM files f "
    "LEFT JOIN contents c ON c.id = f.content_id WHERE f.path = :path"
)
_MODELS = text("""
SELECT DISTINCT v.model FROM files f JOIN taggings t ON t.content_id = f.content_id
JOIN model_versions v ON v.id = t.model_version_id
WHERE f.path = :path AND t.status = 'done' ORDER BY v.model
""")
_SCORES = text(f"""
SELECT v.model, v.version, tg.name, tg.category, s.score
FROM files f
JOIN model_versions v ON v.id = {chosen_version("f.content_id")}
JOIN scores s ON s.model_version_id = v.id AND s.content_id = f.content_id
JOIN tags tg ON tg.model_version_id = s.model_version_id AND tg.idx = s.tag_idx
WHERE f.path = :path AND s.score > :t
ORDER BY s.score DESC
""")
_FAILED = text("""
SELECT v.model, v.version, t.error, t.kind FROM files f
JOIN taggings t ON t.content_id = f.content_id AND t.status = 'failed'
JOIN model_versions v ON v.id = t.model_version_id
WHERE f.path = :path ORDER BY v.model, v.id
""")
_VERSION = text(f"SELECT {chosen_version(':content')}")
# Ordered, not MIN: PostgreSQL has no MIN over bytes.
_PATHS = text(
    "SELECT content_id, path FROM files WHERE content_id IN :contents ORDER BY content_id, path"
).bindparams(bindparam("contents", expanding=True))


def file_row(conn: Connection, path: bytes) -> FileRow | None:
    """The file at `path`, None where the index does not list it."""
    row = conn.execute(_FILE, {"path": path}).first()
    if row is None:
        return None
    content, sha1, width, height, error = row
    return FileRow(None if content is None else int(content), sha1, width, height, error)


def done_models(conn: Connection, path: bytes) -> list[str]:
    """The models with a result for the file's picture, by name."""
    return [str(model) for (model,) in conn.execute(_MODELS, {"path": path})]


def scores_above(
    conn: Connection, path: bytes, model: str, current: str | None, threshold: float
) -> list[tuple[str, str, str, str | None, float]]:
    """(model, version, tag, category, score) above `threshold`, best first, of the
    version chosen for the picture (`current`: the configured version)."""
    values = {"path": path, "t": threshold, "model": model, "current": current}
    return [
        (str(m), str(v), str(t), c, float(s)) for m, v, t, c, s in conn.execute(_SCORES, values)
    ]


def failed_versions(conn: Connection, path: bytes) -> list[Failed]:
    """Each model version that failed on the file's picture, by model, oldest first."""
    return [
        Failed(str(model), str(version), str(error), kind)
        for model, version, error, kind in conn.execute(_FAILED, {"path": path})
    ]


def chosen_version_id(
    conn: Connection, content: int, model: str, current: str | None
) -> int | None:
    """The id of `model`'s version whose result counts for `content`; None: none has one."""
    values = {"content": content, "model": model, "current": current}
    version = conn.execute(_VERSION, values).scalar()
    return None if version is None else int(version)


def first_paths(conn: Connection, contents: Sequence[int]) -> dict[int, bytes]:
    """Each content's first path, in one query for all of them."""
    first: dict[int, bytes] = {}
    if contents:
        for content, path in conn.execute(_PATHS, {"contents": list(contents)}):
            first.setdefault(int(content), bytes(path))
    return first
