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
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, literal, literal_column, select, union

from indexer.store.current import chosen_version
from indexer.store.schema import SEARCH_FLOOR, files, model_versions, scores, taggings, tags

# SQLite uses the partial index only when a query repeats its condition word for word:
# the floor as a literal, not a bound parameter.
_INDEXED: ColumnElement[float] = literal_column(repr(SEARCH_FLOOR))


def version_ids(conn: Connection, model: str) -> list[int]:
    query = select(model_versions.c.id).where(model_versions.c.model == model)
    return [int(v) for v in conn.execute(query.order_by(model_versions.c.id)).scalars()]


def tag_names(conn: Connection, model: str) -> set[str]:
    """Every tag any stored version of the model knows (for "did you mean")."""
    query = (
        select(tags.c.name)
        .distinct()
        .join_from(tags, model_versions, model_versions.c.id == tags.c.model_version_id)
        .where(model_versions.c.model == model)
    )
    return {str(name) for name in conn.execute(query).scalars()}


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
    query = select(tags.c.name, tags.c.idx, tags.c.category, tags.c.threshold).where(
        tags.c.model_version_id == version_id, tags.c.name.in_(list(names))
    )
    terms = {}
    for name, idx, category, own in conn.execute(query):
        above = limit(str(name), category, own)
        rivals: tuple[int, ...] = ()
        if above is None and category is not None:
            same = select(tags.c.idx).where(
                tags.c.model_version_id == version_id, tags.c.category == category
            )
            rivals = tuple(int(i) for i in conn.execute(same).scalars())
        terms[str(name)] = _Term(int(idx), above, rivals)
    return terms


def _passes(row: Any, term: _Term, version_id: int) -> ColumnElement[bool]:
    """Whether score row `row` (the scores table or an alias of it) passes `term`."""
    if term.above is not None:
        passes: ColumnElement[bool] = row.c.score > term.above
        return passes & (row.c.score >= _INDEXED) if term.above >= SEARCH_FLOOR else passes
    other = scores.alias()
    # The export keeps the first best rating in tag order: a tie goes to the lower index.
    better = (other.c.score > row.c.score) | (
        (other.c.score == row.c.score) & (other.c.tag_idx < row.c.tag_idx)
    )
    beaten = select(literal(1)).where(
        other.c.model_version_id == version_id,
        other.c.content_id == row.c.content_id,
        other.c.tag_idx.in_(term.rivals),
        better,
    )
    return ~beaten.exists()


def _score_test(
    content: ColumnElement[Any], term: _Term, version_id: int, negate: bool
) -> ColumnElement[bool]:
    row = scores.alias()
    found = select(literal(1)).where(
        row.c.model_version_id == version_id,
        row.c.content_id == content,
        row.c.tag_idx == term.idx,
        _passes(row, term, version_id),
    )
    return ~found.exists() if negate else found.exists()


def _version_query(
    present: list[_Term], excluded: list[_Term], any_of: bool, version_id: int
) -> Select[Any]:
    """The paths one version finds; binds `model` and `current` (`chosen_version`)."""

    def by_score(term: _Term) -> Select[Any]:
        return select(scores.c.content_id.label("cid")).where(
            scores.c.model_version_id == version_id,
            scores.c.tag_idx == term.idx,
            _passes(scores, term, version_id),
        )

    if not present:
        base: Any = select(taggings.c.content_id.label("cid")).where(
            taggings.c.model_version_id == version_id, taggings.c.status == "done"
        )
    elif any_of:
        base = union(*(by_score(term) for term in present))
    else:
        base = by_score(present[0])
    found = base.subquery("c")
    conditions = [chosen_version(found.c.cid) == version_id]
    if not any_of:
        conditions += [_score_test(found.c.cid, term, version_id, False) for term in present[1:]]
    conditions += [_score_test(found.c.cid, term, version_id, True) for term in excluded]
    return (
        select(files.c.path)
        .join_from(found, files, files.c.content_id == found.c.cid)
        .where(*conditions)
    )


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
        query = _version_query(present, excluded, any_of, version_id)
        values = {"model": model, "current": current}
        found.update(bytes(p) for p in conn.execute(query, values).scalars())
    return sorted(found)
