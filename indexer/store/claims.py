"""Claims: a writer about to tag a content with a model version claims the pair first.

So `scan` beside `watch`, or two scans, on one machine or several, never tag one content
twice for one version. A claim is committed at once and released when the result is
recorded. A claim whose owner is dead (`store.owners` says how that is known) is taken
over at once; one whose owner cannot be judged, once its lease has run out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, select, update

from indexer.errors import Kind
from indexer.store.driver import Direct, Insert
from indexer.store.intake import RELEASE, chunks, settled_pairs
from indexer.store.owners import Owner
from indexer.store.records import Records
from indexer.store.retry import Attempt
from indexer.store.schema import claims, files, taggings

CLAIM_LEASE_NS = 3600 * 10**9
_CLAIM = ("model_version_id", "content_id", "owner", "expires_ns")


def _claim(insert: Insert) -> Any:
    """A pair someone holds stays theirs here; `claim_pairs` decides on taking it over."""
    statement = insert(claims).values({name: bindparam(name) for name in _CLAIM})
    return statement.on_conflict_do_nothing(
        index_elements=[claims.c.model_version_id, claims.c.content_id]
    )


_ADD_CLAIM = Direct(_claim, *_CLAIM)
_TAKE_OVER = Direct(
    lambda _: (
        update(claims)
        .where(claims.c.model_version_id == bindparam("v"), claims.c.content_id == bindparam("c"))
        .values(owner=bindparam("owner"), expires_ns=bindparam("expires"))
    ),
    "owner",
    "expires",
    "v",
    "c",
)
_HOLDERS = select(
    claims.c.model_version_id, claims.c.content_id, claims.c.owner, claims.c.expires_ns
).where(claims.c.content_id.in_(bindparam("ids", expanding=True)))


def claim_pairs(
    index: Records,
    pairs: Sequence[tuple[int, int]],
    owner: Owner,
    attempt: Attempt,
) -> set[tuple[int, int]]:
    """Claim (model version, content) pairs; the ones this process now holds.

    Left out: pairs with nothing to do (`attempt` says which earlier failures are tried
    again) and pairs another live process holds. Claims of dead processes, or past their
    lease, are taken over. Committed when the batch ends (its own, or the caller's that
    records the group), so other writers see them; each is released when its result
    is recorded.
    """
    if not pairs:
        return set()
    now = time.time_ns()
    expires = now + CLAIM_LEASE_NS
    with index.batch() as conn:
        # The insert takes the write lock (`store.writelock`), so what is read below
        # cannot change under us.
        _ADD_CLAIM.run(conn, [(v, c, owner.token, expires) for v, c in pairs])
        done = settled_pairs(conn, (c for _, c in pairs), attempt)
        holders = _holders(index, pairs)
        verdicts: dict[str, bool] = {owner.token: True}
        mine: set[tuple[int, int]] = set()
        for pair in pairs:
            holder, until = holders[pair]
            if holder not in verdicts:
                verdicts[holder] = owner.alive(conn, holder) is False
            if pair not in done and (verdicts[holder] or until < now):
                mine.add(pair)
        taken = [(owner.token, expires, v, c) for v, c in mine if holders[(v, c)][0] != owner.token]
        if taken:
            _TAKE_OVER.run(conn, taken)
    return mine


def _holders(
    index: Records, pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], tuple[str, int]]:
    wanted = set(pairs)
    holders: dict[tuple[int, int], tuple[str, int]] = {}
    for part in chunks(sorted({c for _, c in pairs})):
        for version, content, holder, until in index.conn.execute(_HOLDERS, {"ids": list(part)}):
            if (version, content) in wanted:
                holders[(int(version), int(content))] = (str(holder), int(until))
    return holders


def reap(index: Records, owner: Owner) -> int:
    """Drop every claim whose owner is dead, so its pictures are tagged now, not in an hour."""
    with index.batch() as conn:
        owners = list(conn.execute(select(claims.c.owner).distinct()).scalars())
        dead = [o for o in owners if owner.alive(conn, o) is False]
        if not dead:
            return 0
        condition: ColumnElement[bool] = claims.c.owner.in_(dead)
        return int(conn.execute(delete(claims).where(condition)).rowcount)


@dataclass
class Held:
    """Pairs a writer wants that other processes hold: by whether their owner lives."""

    live: set[tuple[int, int]] = field(default_factory=set)  # wait for their results
    takeable: set[tuple[int, int]] = field(default_factory=set)  # dead, or lease over
    unknown: set[tuple[int, int]] = field(default_factory=set)  # cannot tell: lease decides


def held_elsewhere(
    index: Records, version_ids: Sequence[int], owner: Owner, attempt: Attempt
) -> Held:
    """(model version, content) pairs of present pictures that `attempt` still wants and
    that another process claimed: a scan that skipped them has not completed the index."""
    settled = exists().where(
        and_(
            taggings.c.model_version_id == claims.c.model_version_id,
            taggings.c.content_id == claims.c.content_id,
            attempt.settled(),
        )
    )
    present = exists().where(files.c.content_id == claims.c.content_id)
    query = select(
        claims.c.model_version_id, claims.c.content_id, claims.c.owner, claims.c.expires_ns
    ).where(
        claims.c.model_version_id.in_(list(version_ids)),
        claims.c.owner != owner.token,
        present,
        ~settled,
    )
    rows = index.conn.execute(query).all()
    now, verdicts, held = time.time_ns(), dict[str, bool | None](), Held()
    for version, content, holder, until in rows:
        if holder not in verdicts:
            verdicts[holder] = owner.alive(index.conn, holder)
        verdict, pair = verdicts[holder], (int(version), int(content))
        if verdict is False or until < now:
            held.takeable.add(pair)
        else:
            (held.live if verdict else held.unknown).add(pair)
    index.settle()  # no transaction held open while the caller waits
    return held


def failed_again(index: Records, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Of `pairs`, those whose recorded result is a failure the next scan retries."""
    retried = [kind.value for kind in Kind if kind.retried]
    query = select(taggings.c.model_version_id, taggings.c.content_id).where(
        taggings.c.status == "failed", taggings.c.kind.in_(retried)
    )
    found = {(int(v), int(c)) for v, c in index.conn.execute(query)}
    index.settle()
    return found & pairs


def release_pairs(index: Records, pairs: Sequence[tuple[int, int]]) -> None:
    """Give up claims without a result (a file saved again while read): a scan beside
    waits for what this process claims, and a watch may hold them for days."""
    with index.batch() as conn:
        RELEASE.run(conn, list(pairs))


def release_claims(index: Records, owner: Owner) -> None:
    with index.batch() as conn:
        conn.execute(delete(claims).where(claims.c.owner == owner.token))
