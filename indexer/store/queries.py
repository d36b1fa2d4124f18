"""Read-only queries for `export`, `models` and `status`.

Per content, an export uses the result `store.current.chosen_version` picks: the
configured version's, else the newest version's, so the results of an old version stay
exportable until the new version has caught up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    case,
    exists,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)

from indexer.store.current import present_best
from indexer.store.schema import contents, files, model_versions, roots, scores, taggings, tags
from indexer.store.under import bounds, holds


@dataclass(frozen=True)
class Row:
    content_id: int
    sha1: str
    tag: str
    category: str | None
    score: float
    threshold: float | None  # the tag's own, where the model's authors published one


def scored(
    conn: Connection,
    model: str,
    current: str | None,
    floor: float,
    since_ns: int | None = None,
) -> Iterator[Row]:
    """Tags above `floor` (and every rating tag) of each present content, by SHA-1.

    With `since_ns`, only contents changed since (`_changed_since`).
    """
    best = present_best()
    query = (
        select(
            contents.c.id,
            contents.c.sha1,
            tags.c.name,
            tags.c.category,
            scores.c.score,
            tags.c.threshold,
        )
        .select_from(best)
        .join(contents, (contents.c.id == best.c.cid) & best.c.mv.is_not(None))
        .join(
            taggings,
            (taggings.c.content_id == best.c.cid) & (taggings.c.model_version_id == best.c.mv),
        )
        .join(
            scores, (scores.c.model_version_id == best.c.mv) & (scores.c.content_id == best.c.cid)
        )
        .join(tags, (tags.c.model_version_id == best.c.mv) & (tags.c.idx == scores.c.tag_idx))
        .where(
            (scores.c.score > floor) | (tags.c.category == "rating"),
            _changed_since(since_ns, best.c.cid),
        )
        .order_by(contents.c.sha1, contents.c.id, scores.c.tag_idx)
    )
    for row in conn.execute(query, {"model": model, "current": current}):
        yield Row(int(row[0]), str(row[1]), str(row[2]), row[3], float(row[4]), row[5])


def tagged_contents(
    conn: Connection, model: str, current: str | None, since_ns: int | None = None
) -> set[int]:
    """Present contents with a result of `model` (changed since `since_ns`): the pictures
    an export covers, also those no tag of which passes its thresholds."""
    best = present_best()
    query = (
        select(best.c.cid)
        .join_from(
            best,
            taggings,
            (taggings.c.content_id == best.c.cid) & (taggings.c.model_version_id == best.c.mv),
        )
        .where(_changed_since(since_ns, best.c.cid))
    )
    return {int(cid) for cid in conn.execute(query, {"model": model, "current": current}).scalars()}


def _changed_since(since_ns: int | None, content: Any) -> ColumnElement[bool]:
    """A content whose result was recorded at or after `since_ns`, or one of whose files
    was read or moved (`files.named_ns`) then, whichever came last: a picture tagged
    before and copied, renamed or saved over a moved file since has a path an export by
    path has not listed with it. A file read again (its ctime changed) counts too: the
    export lists more, never less."""
    if since_ns is None:
        return true()
    moved_last = files.c.named_ns > files.c.checked_ns  # NULL (never moved): not so
    named = case((moved_last, files.c.named_ns), else_=files.c.checked_ns)
    renamed = exists().where(files.c.content_id == content, named >= since_ns)
    return (taggings.c.tagged_ns >= since_ns) | renamed


def categories(conn: Connection, model: str) -> set[str]:
    """The tag categories any stored version of `model` has (empty: a plain tag list)."""
    query = (
        select(tags.c.category)
        .distinct()
        .join_from(tags, model_versions, model_versions.c.id == tags.c.model_version_id)
        .where(model_versions.c.model == model, tags.c.category.is_not(None))
    )
    return {str(c) for c in conn.execute(query).scalars()}


def paths_by_content(conn: Connection) -> dict[int, list[tuple[bytes, bytes]]]:
    """Each present content's files, with the root each lies under."""
    paths: dict[int, list[tuple[bytes, bytes]]] = {}
    query = (
        select(files.c.content_id, files.c.path, roots.c.path)
        .join_from(files, roots, roots.c.id == files.c.root_id)
        .where(files.c.content_id.is_not(None))
        .order_by(files.c.path)
    )
    for content_id, path, root in conn.execute(query):
        paths.setdefault(int(content_id), []).append((bytes(path), bytes(root)))
    return paths


def all_paths(conn: Connection) -> list[bytes]:
    return [bytes(p) for p in conn.execute(select(files.c.path)).scalars()]


@dataclass(frozen=True)
class Coverage:
    present: int
    done: int
    failed: int


def coverage(conn: Connection, model: str, version: str) -> Coverage:
    present = (
        select(files.c.content_id).where(files.c.content_id.is_not(None)).distinct().cte("present")
    )

    def count(status: str) -> Select[int]:
        return (
            select(func.count())
            .select_from(taggings)
            .join(present, present.c.content_id == taggings.c.content_id)
            .join(model_versions, model_versions.c.id == taggings.c.model_version_id)
            .where(
                model_versions.c.model == model,
                model_versions.c.version == version,
                taggings.c.status == status,
            )
        )

    everything = select(func.count()).select_from(present)
    query = select(*(q.scalar_subquery() for q in (everything, count("done"), count("failed"))))
    found, done, failed = conn.execute(query).one()
    return Coverage(int(found), int(done), int(failed))


def versions(conn: Connection) -> list[tuple[str, str, str, int]]:
    v = model_versions.c
    query = select(v.model, v.version, v.title, v.tag_count).order_by(v.model, v.id)
    return [(str(m), str(n), str(t), int(c)) for m, n, t, c in conn.execute(query)]


def root_paths(conn: Connection) -> list[bytes]:
    """The roots' paths, without counting their files."""
    return [bytes(p) for p in conn.execute(select(roots.c.path).order_by(roots.c.path)).scalars()]


def files_under(conn: Connection, folder: bytes) -> int:
    """How many files the index holds under `folder` (by path, whichever root owns them)."""
    low, high = bounds(folder)
    count = select(func.count()).where(files.c.path >= low, files.c.path < high)
    return int(conn.execute(count).scalar_one())


def roots_summary(conn: Connection) -> list[tuple[bytes, int | None, int]]:
    """Each root: its path, when it was last scanned, and the files it holds by path,
    each file counted once, under the innermost root holding it (as `forget` keeps them),
    whichever root's scan found it first."""
    rows = [(bytes(p), s) for p, s in conn.execute(select(roots.c.path, roots.c.scanned_ns))]
    under = {path: files_under(conn, path) for path, _ in rows}
    found = []
    for path, scanned in rows:
        inner = [r for r in under if holds(path, r)]
        direct = [r for r in inner if not any(holds(o, r) for o in inner)]
        found.append((path, scanned, under[path] - sum(under[r] for r in direct)))
    return sorted(found)


def totals(conn: Connection) -> dict[str, int]:
    """Files, distinct pictures among them, and files whose bytes could not be read."""
    every = select(func.count()).select_from(files)
    pictures = select(func.count(files.c.content_id.distinct())).where(
        files.c.content_id.is_not(None)
    )
    unreadable = every.where(files.c.error.is_not(None))
    query = select(*(q.scalar_subquery() for q in (every, pictures, unreadable)))
    found, distinct, failed = conn.execute(query).one()
    return {"files": found, "contents": distinct, "unreadable": failed}


def failed_pictures(conn: Connection) -> list[tuple[str, int]]:
    """(model, content) for each present picture a model failed on and has no result of
    (no version of the model tagged it): a picture counts once per model, however many
    of the model's versions failed on it."""
    done, done_version = taggings.alias("d"), model_versions.alias("dv")
    present = select(literal(1)).where(files.c.content_id == taggings.c.content_id).exists()
    tagged = (
        select(literal(1))
        .join_from(done, done_version, done_version.c.id == done.c.model_version_id)
        .where(
            done.c.content_id == taggings.c.content_id,
            done.c.status == "done",
            done_version.c.model == model_versions.c.model,
        )
        .exists()
    )
    query = (
        select(model_versions.c.model, taggings.c.content_id)
        .distinct()
        .join_from(taggings, model_versions, model_versions.c.id == taggings.c.model_version_id)
        .where(taggings.c.status == "failed", present, ~tagged)
    )
    return [(str(model), int(content)) for model, content in conn.execute(query)]


@dataclass(frozen=True)
class FailureRow:
    """A failure as `status` lists it: once per picture and reason, with its kind and
    the model versions it failed for (none: the file itself could not be read)."""

    path: bytes
    error: str
    kind: str
    models: tuple[str, ...]


def failures(conn: Connection, limit: int) -> list[FailureRow]:
    # A picture's first path by ORDER BY, as PostgreSQL has no MIN of bytes.
    first_path = (
        select(files.c.path)
        .where(files.c.content_id == taggings.c.content_id)
        .order_by(files.c.path)
        .limit(1)
        .scalar_subquery()
    )
    named = model_versions.c.model + " " + model_versions.c.version
    unreadable = select(files.c.path, files.c.error, files.c.kind, null().label("models"))
    failed = (
        select(
            first_path.label("path"),
            taggings.c.error,
            taggings.c.kind,
            func.aggregate_strings(named, "\t").label("models"),
        )
        .join_from(taggings, model_versions, model_versions.c.id == taggings.c.model_version_id)
        .where(taggings.c.status == "failed")
        .group_by(taggings.c.content_id, taggings.c.error, taggings.c.kind)
    )
    listed = union_all(unreadable.where(files.c.error.is_not(None)), failed).subquery("listed")
    query = (
        select(listed)
        .where(listed.c.path.is_not(None))
        .order_by(listed.c.path, listed.c.error)
        .limit(limit)
    )
    return [
        FailureRow(bytes(p), str(e), str(k or "picture"), tuple(sorted(m.split("\t"))) if m else ())
        for p, e, k, m in conn.execute(query)
    ]
