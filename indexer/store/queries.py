"""Read-only queries for `export`, `models` and `status`.

Per content, an export uses the newest version of the model that has tagged it, so the
results of an old version stay exportable until the new version has caught up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, text

_BEST = """
WITH present AS (SELECT DISTINCT content_id FROM files WHERE content_id IS NOT NULL),
best AS (
  SELECT t.content_id AS cid, MAX(t.model_version_id) AS mv
  FROM taggings t JOIN present p ON p.content_id = t.content_id
  JOIN model_versions v ON v.id = t.model_version_id
  WHERE t.status = 'done' AND v.model = :model
  GROUP BY t.content_id)
"""


@dataclass(frozen=True)
class Scored:
    content_id: int
    sha1: str
    tag: str
    category: int | None
    score: float


def model_known(conn: Connection, model: str) -> bool:
    query = text("SELECT 1 FROM model_versions WHERE model = :model LIMIT 1")
    return conn.execute(query, {"model": model}).first() is not None


def scored(conn: Connection, model: str, floor: float) -> Iterator[Scored]:
    """Tags above `floor` of every present content, ordered by SHA-1 then model order."""
    query = text(
        _BEST
        + """
        SELECT c.id, c.sha1, tg.name, tg.category, s.score
        FROM best JOIN contents c ON c.id = best.cid
        JOIN scores s ON s.model_version_id = best.mv AND s.content_id = best.cid
        JOIN tags tg ON tg.model_version_id = best.mv AND tg.idx = s.tag_idx
        WHERE s.score > :floor
        ORDER BY c.sha1, c.id, s.tag_idx"""
    )
    for row in conn.execute(query, {"model": model, "floor": floor}):
        yield Scored(int(row[0]), str(row[1]), str(row[2]), row[3], float(row[4]))


def paths_by_content(conn: Connection) -> dict[int, list[bytes]]:
    paths: dict[int, list[bytes]] = {}
    query = text("SELECT content_id, path FROM files WHERE content_id IS NOT NULL ORDER BY path")
    for content_id, path in conn.execute(query):
        paths.setdefault(int(content_id), []).append(bytes(path))
    return paths


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
    query = text("""SELECT
        (SELECT COUNT(*) FROM files),
        (SELECT COUNT(DISTINCT content_id) FROM files WHERE content_id IS NOT NULL),
        (SELECT COUNT(*) FROM files WHERE error IS NOT NULL),
        (SELECT COUNT(*) FROM taggings WHERE status = 'failed')""")
    files, contents, unreadable, failed = conn.execute(query).one()
    return {"files": files, "contents": contents, "unreadable": unreadable, "failed": failed}


def failures(conn: Connection, limit: int) -> list[tuple[bytes, str]]:
    query = text("""
        SELECT path, error FROM files WHERE error IS NOT NULL
        UNION ALL
        SELECT MIN(f.path), v.model || ': ' || t.error FROM taggings t
          JOIN files f ON f.content_id = t.content_id
          JOIN model_versions v ON v.id = t.model_version_id
          WHERE t.status = 'failed' GROUP BY t.content_id, t.model_version_id
        ORDER BY 1 LIMIT :limit""")
    return [(bytes(p), str(e)) for p, e in conn.execute(query, {"limit": limit})]
