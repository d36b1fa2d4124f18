"""One picture by its path, as `show` and `similar` read it: the file's row, the stored
scores of each model that tagged it, the versions that failed on it, its nearest
neighbours' first paths.

A content counts under the version `store.current.chosen_version` picks for it (the
configured one where it has a result, else the newest), as the export does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BindParameter, Connection, bindparam, select

from indexer.store.current import chosen_version
from indexer.store.schema import contents, files, model_versions, scores, taggings, tags


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


_PATH: BindParameter[bytes] = bindparam("path")
_FILE = (
    select(files.c.content_id, contents.c.sha1, contents.c.width, contents.c.height, files.c.error)
    .join_from(files, contents, contents.c.id == files.c.content_id, isouter=True)
    .where(files.c.path == _PATH)
)
_MODELS = (
    select(model_versions.c.model)
    .distinct()
    .join_from(files, taggings, taggings.c.content_id == files.c.content_id)
    .join(model_versions, model_versions.c.id == taggings.c.model_version_id)
    .where(files.c.path == _PATH, taggings.c.status == "done")
    .order_by(model_versions.c.model)
)
_SCORES = (
    select(
        model_versions.c.model,
        model_versions.c.version,
        tags.c.name,
        tags.c.category,
        scores.c.score,
    )
    .select_from(files)
    .join(model_versions, model_versions.c.id == chosen_version(files.c.content_id))
    .join(
        scores,
        (scores.c.model_version_id == model_versions.c.id)
        & (scores.c.content_id == files.c.content_id),
    )
    .join(
        tags,
        (tags.c.model_version_id == scores.c.model_version_id) & (tags.c.idx == scores.c.tag_idx),
    )
    .where(files.c.path == _PATH, scores.c.score > bindparam("t"))
    .order_by(scores.c.score.desc())
)
_FAILED = (
    select(model_versions.c.model, model_versions.c.version, taggings.c.error, taggings.c.kind)
    .join_from(
        files,
        taggings,
        (taggings.c.content_id == files.c.content_id) & (taggings.c.status == "failed"),
    )
    .join(model_versions, model_versions.c.id == taggings.c.model_version_id)
    .where(files.c.path == _PATH)
    .order_by(model_versions.c.model, model_versions.c.id)
)
_VERSION = select(chosen_version(bindparam("content")))
_CHOSEN = (
    select(model_versions.c.version)
    .select_from(files)
    .join(model_versions, model_versions.c.id == chosen_version(files.c.content_id))
    .where(files.c.path == _PATH)
)
# Ordered, not MIN: PostgreSQL has no MIN over bytes.
_PATHS = (
    select(files.c.content_id, files.c.path)
    .where(files.c.content_id.in_(bindparam("contents", expanding=True)))
    .order_by(files.c.content_id, files.c.path)
)


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


def chosen_version_of(conn: Connection, path: bytes, model: str, current: str | None) -> str:
    """The version of `model` whose result counts for the file's picture ("" if none)."""
    values = {"path": path, "model": model, "current": current}
    return str(conn.execute(_CHOSEN, values).scalar() or "")


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
