"""Finding pictures by stored tags, fast on large indexes.

Each model version is searched on its own: the first wanted tag is a range scan of the
`ix_scores_tag` index (version, tag, score); the others are primary-key lookups per
candidate. A content counts under the version `store.current.chosen_version` picks for
it (the configured one where it has a result, else the newest). The index holds scores
from `SEARCH_FLOOR` up; a threshold below it reads every score of the version instead
(slow on big galleries, but still right).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

from indexer.store.current import chosen_version
from indexer.store.schema import SEARCH_FLOOR


def version_ids(conn: Connection, model: str) -> list[int]:
    query = text("SELECT id FROM model_versions WHERE model = :model ORDER BY id")
    return [int(v) for (v,) in conn.execute(query, {"model": model})]


def tag_names(conn: Connection, model: str) -> set[str]:
    """Every tag any stored version of the model knows (for "did you mean")."""
    query = text(
        "SELECT DISTINCT t.name FROM tags t JOIN model_versions v ON v.id = t.model_version_id "
        "WHERE v.model = :model"
    )
    return {str(name) for (name,) in conn.execute(query, {"model": model})}


def _tag_ids(conn: Connection, version_id: int, names: Sequence[str]) -> dict[str, int]:
    if not names:
        return {}
    marks = ", ".join(f":n{i}" for i in range(len(names)))
    sql = f"SELECT name, idx FROM tags WHERE model_version_id = :v AND name IN ({marks})"
    params = {"v": version_id, **{f"n{i}": n for i, n in enumerate(names)}}
    return {str(name): int(idx) for name, idx in conn.execute(text(sql), params)}


def _score_test(alias: str, number: int, negate: bool = False) -> str:
    exists = "NOT EXISTS" if negate else "EXISTS"
    return (
        f"{exists} (SELECT 1 FROM scores {alias} WHERE {alias}.model_version_id = :v "
        f"AND {alias}.content_id = c.cid AND {alias}.tag_idx = :t{number} AND {alias}.score > :th)"
    )


def _version_query(
    present: list[int], excluded: list[int], any_of: bool, indexed: str
) -> tuple[str, dict[str, object]]:
    """SQL and tag parameters for one version; binds :v, :th, :model, :current too."""
    params: dict[str, object] = {}
    by_score = (
        "SELECT content_id AS cid FROM scores WHERE model_version_id = :v "
        f"AND tag_idx = :t{{}} AND score > :th{indexed}"
    )
    if not present:
        base = (
            "SELECT content_id AS cid FROM taggings WHERE model_version_id = :v AND status = 'done'"
        )
    elif any_of:
        base = " UNION ".join(by_score.format(k) for k in range(len(present)))
    else:
        base = by_score.format(0)
    params.update({f"t{k}": idx for k, idx in enumerate(present)})
    conditions = [f"{chosen_version('c.cid')} = :v"]
    if not any_of:
        conditions += [_score_test(f"s{k}", k) for k in range(1, len(present))]
    for k, idx in enumerate(excluded, start=len(present)):
        params[f"t{k}"] = idx
        conditions.append(_score_test(f"s{k}", k, negate=True))
    sql = (
        f"SELECT f.path FROM ({base}) c JOIN files f ON f.content_id = c.cid "
        f"WHERE {' AND '.join(conditions)}"
    )
    return sql, params


def search(
    conn: Connection,
    model: str,
    current: str | None,
    wanted: Sequence[str],
    unwanted: Sequence[str],
    threshold: float,
    any_of: bool = False,
) -> list[bytes]:
    """Paths of present pictures with all (or, with `any_of`, any) wanted tags above the
    threshold and none of the unwanted ones; `current` is the configured version."""
    # SQLite uses a partial index only when the query repeats its condition word for word.
    indexed = f" AND score >= {SEARCH_FLOOR}" if threshold >= SEARCH_FLOOR else ""
    found: set[bytes] = set()
    for version_id in version_ids(conn, model):
        ids = _tag_ids(conn, version_id, [*wanted, *unwanted])
        present = [ids[t] for t in wanted if t in ids]
        if wanted and not any_of and len(present) < len(wanted):
            continue  # a wanted tag this version does not know
        if wanted and not present:
            continue
        excluded = [ids[t] for t in unwanted if t in ids]
        sql, params = _version_query(present, excluded, any_of, indexed)
        params.update(v=version_id, th=threshold, model=model, current=current)
        found.update(bytes(p) for (p,) in conn.execute(text(sql), params))
    return sorted(found)
