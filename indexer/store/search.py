"""Finding pictures by stored tags, fast on large indexes.

Each model version is searched on its own: the first wanted tag is a range scan of the
`ix_scores_tag` index (version, tag, score); the others are primary-key lookups per
candidate. A tag counts where its score passes its own limit (the export's rule, per
category; a rating where it is the picture's best). A content counts under the version
`store.current.chosen_version` picks for it (the configured one where it has a result,
else the newest). The index holds scores
from `SEARCH_FLOOR` up; a threshold below it reads every score of the version instead
(slow on big galleries, but still right).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


# A tag row's (name, category, own threshold) to the score it must pass; None: the tag is
# had where it is the best of its category (ratings: `export.thresholds.Thresholds.limit`).
Limit = Callable[[str, str | None, float | None], float | None]


@dataclass(frozen=True)
class _Term:
    idx: int
    above: float | None  # None: the best of `rivals` (its category's tags, itself included)
    rivals: tuple[int, ...] = ()


def _terms(
    conn: Connection, version_id: int, names: Sequence[str], limit: Limit
) -> dict[str, _Term]:
    if not names:
        return {}
    marks = ", ".join(f":n{i}" for i in range(len(names)))
    sql = (
        "SELECT name, idx, category, threshold FROM tags "
        f"WHERE model_version_id = :v AND name IN ({marks})"
    )
    params = {"v": version_id, **{f"n{i}": n for i, n in enumerate(names)}}
    terms = {}
    for name, idx, category, own in conn.execute(text(sql), params):
        above = limit(str(name), category, own)
        rivals: tuple[int, ...] = ()
        if above is None:
            query = text("SELECT idx FROM tags WHERE model_version_id = :v AND category = :c")
            rivals = tuple(int(i) for (i,) in conn.execute(query, {"v": version_id, "c": category}))
        terms[str(name)] = _Term(int(idx), above, rivals)
    return terms


def _passes(alias: str, number: int, term: _Term, params: dict[str, object]) -> str:
    """The condition on score row `alias` of term `number`; binds its parameters."""
    params[f"t{number}"] = term.idx
    if term.above is not None:
        params[f"th{number}"] = term.above
        # SQLite uses a partial index only when the query repeats its condition word for word.
        indexed = f" AND {alias}.score >= {SEARCH_FLOOR}" if term.above >= SEARCH_FLOOR else ""
        return f"{alias}.score > :th{number}{indexed}"
    marks = ", ".join(f":r{number}_{i}" for i in range(len(term.rivals)))
    params.update({f"r{number}_{i}": idx for i, idx in enumerate(term.rivals)})
    # The export keeps the first best rating in tag order: a tie goes to the lower index.
    return (
        f"NOT EXISTS (SELECT 1 FROM scores o{number} WHERE o{number}.model_version_id = :v "
        f"AND o{number}.content_id = {alias}.content_id AND o{number}.tag_idx IN ({marks}) "
        f"AND (o{number}.score > {alias}.score OR (o{number}.score = {alias}.score "
        f"AND o{number}.tag_idx < {alias}.tag_idx)))"
    )


def _score_test(number: int, term: _Term, params: dict[str, object], negate: bool) -> str:
    alias = f"s{number}"
    exists = "NOT EXISTS" if negate else "EXISTS"
    return (
        f"{exists} (SELECT 1 FROM scores {alias} WHERE {alias}.model_version_id = :v "
        f"AND {alias}.content_id = c.cid AND {alias}.tag_idx = :t{number} "
        f"AND {_passes(alias, number, term, params)})"
    )


def _version_query(
    present: list[_Term], excluded: list[_Term], any_of: bool
) -> tuple[str, dict[str, object]]:
    """SQL and tag parameters for one version; binds :v, :model, :current too."""
    params: dict[str, object] = {}

    def by_score(k: int) -> str:
        return (
            "SELECT content_id AS cid FROM scores WHERE model_version_id = :v "
            f"AND tag_idx = :t{k} AND {_passes('scores', k, present[k], params)}"
        )

    if not present:
        base = (
            "SELECT content_id AS cid FROM taggings WHERE model_version_id = :v AND status = 'done'"
        )
    elif any_of:
        base = " UNION ".join(by_score(k) for k in range(len(present)))
    else:
        base = by_score(0)
    conditions = [f"{chosen_version('c.cid')} = :v"]
    if not any_of:
        conditions += [_score_test(k, present[k], params, False) for k in range(1, len(present))]
    for k, term in enumerate(excluded, start=len(present)):
        conditions.append(_score_test(k, term, params, True))
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
    threshold: float | Limit,
    any_of: bool = False,
) -> list[bytes]:
    """Paths of present pictures that have all (or, with `any_of`, any) wanted tags and
    none of the unwanted ones; `current` is the configured version. A tag is had where
    its score passes `threshold`: one number for every tag, or the export's rule."""
    limit: Limit = threshold if callable(threshold) else (lambda *_: threshold)
    found: set[bytes] = set()
    for version_id in version_ids(conn, model):
        terms = _terms(conn, version_id, [*wanted, *unwanted], limit)
        present = [terms[t] for t in wanted if t in terms]
        if wanted and not any_of and len(present) < len(wanted):
            continue  # a wanted tag this version does not know
        if wanted and not present:
            continue
        excluded = [terms[t] for t in unwanted if t in terms]
        sql, params = _version_query(present, excluded, any_of)
        params.update(v=version_id, model=model, current=current)
        found.update(bytes(p) for (p,) in conn.execute(text(sql), params))
    return sorted(found)
