"""Finding pictures by stored tags, fast on large indexes.

Each model version is searched on its own: the first wanted tag is a range scan of the
`ix_scores_tag` index (version, tag, score); the others are primary-key lookups per
candidate. A content counts under the newest version of the model that has tagged it.
The index holds scores from `SEARCH_FLOOR` up; a threshold below it reads every score
of the version instead (slow on big galleries, but still right).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from .schema import SEARCH_FLOOR


def _tag_ids(conn: Connection, version_id: int, names: Sequence[str]) -> dict[str, int]:
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    sql = f"SELECT name, idx FROM tags WHERE model_version_id = ? AND name IN ({marks})"
    rows = conn.exec_driver_sql(sql, (version_id, *names))
    return {str(name): int(idx) for name, idx in rows}


def search(
    conn: Connection,
    model: str,
    wanted: Sequence[str],
    unwanted: Sequence[str],
    threshold: float,
    any_of: bool = False,
) -> list[bytes]:
    """Paths of present pictures with all (or, with `any_of`, any) wanted tags above the
    threshold and none of the unwanted ones."""
    versions = [
        int(v)
        for (v,) in conn.exec_driver_sql(
            "SELECT id FROM model_versions WHERE model = ? ORDER BY id", (model,)
        )
    ]
    # SQLite uses a partial index only when the query repeats its condition word for word.
    indexed = f" AND score >= {SEARCH_FLOOR}" if threshold >= SEARCH_FLOOR else ""
    found: set[bytes] = set()
    for version_id in versions:
        ids = _tag_ids(conn, version_id, [*wanted, *unwanted])
        present = [ids[t] for t in wanted if t in ids]
        if wanted and not any_of and len(present) < len(wanted):
            continue  # a wanted tag this version does not know
        if wanted and not present:
            continue
        newer = (
            "NOT EXISTS (SELECT 1 FROM taggings n JOIN model_versions nv ON nv.id = "
            "n.model_version_id WHERE n.content_id = c.cid AND n.status = 'done' "
            "AND nv.model = ? AND n.model_version_id > ?)"
        )
        params: list[object] = []
        if not wanted:
            base = (
                "SELECT content_id AS cid FROM taggings WHERE model_version_id = ? "
                "AND status = 'done'"
            )
            params.append(version_id)
        elif any_of:
            base = " UNION ".join(
                "SELECT content_id AS cid FROM scores WHERE model_version_id = ? "
                f"AND tag_idx = ? AND score > ?{indexed}"
                for _ in present
            )
            for idx in present:
                params += [version_id, idx, threshold]
        else:
            base = (
                "SELECT content_id AS cid FROM scores WHERE model_version_id = ? "
                f"AND tag_idx = ? AND score > ?{indexed}"
            )
            params += [version_id, present[0], threshold]
        conditions = [newer]
        params_after: list[object] = [model, version_id]
        others = [] if any_of else present[1:]
        for idx in others:
            conditions.append(
                "EXISTS (SELECT 1 FROM scores s WHERE s.model_version_id = ? "
                "AND s.content_id = c.cid AND s.tag_idx = ? AND s.score > ?)"
            )
            params_after += [version_id, idx, threshold]
        for name in unwanted:
            if name in ids:
                conditions.append(
                    "NOT EXISTS (SELECT 1 FROM scores s WHERE s.model_version_id = ? "
                    "AND s.content_id = c.cid AND s.tag_idx = ? AND s.score > ?)"
                )
                params_after += [version_id, ids[name], threshold]
        sql = (
            f"SELECT f.path FROM ({base}) c JOIN files f ON f.content_id = c.cid "
            f"WHERE {' AND '.join(conditions)}"
        )
        found.update(bytes(p) for (p,) in conn.exec_driver_sql(sql, tuple(params + params_after)))
    return sorted(found)
