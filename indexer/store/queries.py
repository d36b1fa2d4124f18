"""Read-only queries for `export`, `models` and `status`.

Per content, an export uses the result `store.current.chosen_version` picks: the
configured version's, else the newest version's, so the results of an old version stay
exportable until the new version has caught up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, text

from indexer.store.current import PRESENT_BEST as _BEST


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

    With `since_ns`, only contents whose exported result was recorded at or after it.
    """
    query = text(
        _BEST
        + """
        SELECT c.id, c.sha1, tg.name, tg.category, s.score, tg.threshold
        FROM best JOIN contents c ON c.id = best.cid AND best.mv IS NOT NULL
        JOIN taggings tt ON tt.content_id = best.cid AND tt.model_version_id = best.mv
        JOIN scores s ON s.model_version_id = best.mv AND s.content_id = best.cid
        JOIN tags tg ON tg.model_version_id = best.mv AND tg.idx = s.tag_idx
        WHERE (s.score > :floor OR tg.category = 'rating') AND tt.tagged_ns >= :since
        ORDER BY c.sha1, c.id, s.tag_idx"""
    )
    values = {"model": model, "current": current, "floor": floor, "since": since_ns or 0}
    for row in conn.execute(query, values):
        yield Row(int(row[0]), str(row[1]), str(row[2]), row[3], float(row[4]), row[5])


def tagged_contents(
    conn: Connection, model: str, current: str | None, since_ns: int | None = None
) -> set[int]:
    """Present contents with a result of `model` (recorded at or after `since_ns`): the
    pictures an export covers, also those no tag of which passes its thresholds."""
    query = text(
        _BEST
        + """
        SELECT best.cid FROM best
        JOIN taggings tt ON tt.content_id = best.cid AND tt.model_version_id = best.mv
        WHERE tt.tagged_ns >= :since"""
    )
    values = {"model": model, "current": current, "since": since_ns or 0}
    return {int(cid) for (cid,) in conn.execute(query, values)}


def categories(conn: Connection, model: str) -> set[str]:
    """The tag categories any stored version of `model` has (empty: a plain tag list)."""
    query = text("""SELECT DISTINCT tg.category FROM tags tg
                    JOIN model_versions mv ON mv.id = tg.model_version_id
                    WHERE mv.model = :model AND tg.category IS NOT NULL""")
    return {str(c) for (c,) in conn.execute(query, {"model": model})}


def paths_by_content(conn: Connection) -> dict[int, list[tuple[bytes, bytes]]]:
    """Each present content's files, with the root each lies under."""
    paths: dict[int, list[tuple[bytes, bytes]]] = {}
    query = text("""SELECT f.content_id, f.path, r.path
                    FROM files f JOIN roots r ON r.id = f.root_id
                    WHERE f.content_id IS NOT NULL ORDER BY f.path""")
    for content_id, path, root in conn.execute(query):
        paths.setdefault(int(content_id), []).append((bytes(path), bytes(root)))
    return paths


def all_paths(conn: Connection) -> list[bytes]:
    return [bytes(p) for (p,) in conn.execute(text("SELECT path FROM files"))]


@dataclass(frozen=True)
class Coverage:
    present: int
    done: int
    failed: int


def coverage(conn: Connection, model: str, version: str) -> Coverage:
    query = text("""
        WITH present AS (SELECT DISTINCT content_id FROM files WHERE content_id IS NOT NULL)
        SELECT
          (SELECT COUNT(*) FROM present),
          (SELECT COUNT(*) FROM taggings t JOIN present p ON p.content_id = t.content_id
             JOIN model_versions v ON v.id = t.model_version_id
             WHERE v.model = :model AND v.version = :version AND t.status = 'done'),
          (SELECT COUNT(*) FROM taggings t JOIN present p ON p.content_id = t.content_id
             JOIN model_versions v ON v.id = t.model_version_id
             WHERE v.model = :model AND v.version = :version AND t.status = 'failed')
    """)
    present, done, failed = conn.execute(query, {"model": model, "version": version}).one()
    return Coverage(int(present), int(done), int(failed))


def versions(conn: Connection) -> list[tuple[str, str, str, int]]:
    query = text("SELECT model, version, title, tag_count FROM model_versions ORDER BY model, id")
    return [(str(m), str(v), str(t), int(n)) for m, v, t, n in conn.execute(query)]


def roots_summary(conn: Connection) -> list[tuple[bytes, int | None, int]]:
    query = text("""SELECT r.path, r.scanned_ns, COUNT(f.id) FROM roots r
                    LEFT JOIN files f ON f.root_id = r.id GROUP BY r.id ORDER BY r.path""")
    return [(bytes(p), s, int(n)) for p, s, n in conn.execute(query)]


def totals(conn: Connection) -> dict[str, int]:
    """Files, distinct pictures among them, and files whose bytes could not be read."""
    query = text("""SELECT
        (SELECT COUNT(*) FROM files),
        (SELECT COUNT(DISTINCT content_id) FROM files WHERE content_id IS NOT NULL),
        (SELECT COUNT(*) FROM files WHERE error IS NOT NULL)""")
    files, contents, unreadable = conn.execute(query).one()
    return {"files": files, "contents": contents, "unreadable": unreadable}


def failed_pictures(conn: Connection) -> list[tuple[str, int]]:
    """(model, content) for each present picture a model failed on and has no result of
    (no version of the model tagged it): a picture counts once per model, however many
    of the model's versions failed on it."""
    query = text("""
        SELECT DISTINCT v.model, t.content_id FROM taggings t
        JOIN model_versions v ON v.id = t.model_version_id
        WHERE t.status = 'failed'
          AND EXISTS (SELECT 1 FROM files f WHERE f.content_id = t.content_id)
          AND NOT EXISTS (SELECT 1 FROM taggings d
                          JOIN model_versions dv ON dv.id = d.model_version_id
                          WHERE d.content_id = t.content_id AND d.status = 'done'
                            AND dv.model = v.model)""")
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
    concat = "GROUP_CONCAT" if conn.dialect.name == "sqlite" else "STRING_AGG"
    query = text(f"""
        SELECT path, error, kind, models FROM (
          SELECT path, error, kind, NULL AS models FROM files WHERE error IS NOT NULL
          UNION ALL
          SELECT (SELECT f.path FROM files f WHERE f.content_id = t.content_id
                  ORDER BY f.path LIMIT 1) AS path,
                 t.error, t.kind, {concat}(v.model || ' ' || v.version, :tab) AS models
          FROM taggings t JOIN model_versions v ON v.id = t.model_version_id
          WHERE t.status = 'failed' GROUP BY t.content_id, t.error, t.kind
        ) AS listed WHERE path IS NOT NULL ORDER BY path, error LIMIT :limit""")
    return [
        FailureRow(bytes(p), str(e), str(k or "picture"), tuple(sorted(m.split("\t"))) if m else ())
        for p, e, k, m in conn.execute(query, {"limit": limit, "tab": "\t"})
    ]
