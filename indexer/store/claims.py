"""Claims: a writer about to tag a content with a model version claims the pair first.

So `scan` beside `watch`, or two scans, on one machine or several, never tag one content
twice for one version. A claim is committed at once and released when the result is
recorded. A claim whose owner is dead (`store.owners` says how that is known) is taken
over at once; one whose owner cannot be judged, once its lease has run out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, select

from indexer.store.driver import marks, run
from indexer.store.intake import CHUNK, settled_pairs
from indexer.store.owners import Owner
from indexer.store.records import Records
from indexer.store.retry import Attempt
from indexer.store.schema import claims

CLAIM_LEASE_NS = 3600 * 10**9


def claim_pairs(
    index: Records,
    pairs: Sequence[tuple[int, int]],
    owner: Owner,
    attempt: Attempt,
) -> set[tuple[int, int]]:
    """Claim (model version, content) pairs; the ones this process now holds.

    Left out: pairs with nothing to do (`attempt` says which earlier failures are tried
    again) and pairs another live process holds. Claims of dead processes, or past their
    lease, are taken over. Committed at once so other writers see them; each is
    released when its result is recorded.
    """
    if not pairs:
        return set()
    now = time.time_ns()
    expires = now + CLAIM_LEASE_NS
    # The insert takes the write lock (`store.writelock`), so what is read below cannot
    # change under us.
    run(
        index.conn,
        "INSERT INTO claims (model_version_id, content_id, owner, expires_ns) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (model_version_id, content_id) DO NOTHING",
        [(v, c, owner.token, expires) for v, c in pairs],
    )
    done = settled_pairs(index.conn, (c for _, c in pairs), attempt)
    holders = _holders(index, pairs)
    verdicts: dict[str, bool] = {owner.token: True}
    mine: set[tuple[int, int]] = set()
    for pair in pairs:
        holder, until = holders[pair]
        if holder not in verdicts:
            verdicts[holder] = owner.alive(index.conn, holder) is False
        if pair not in done and (verdicts[holder] or until < now):
            mine.add(pair)
    taken = [(owner.token, expires, v, c) for v, c in mine if holders[(v, c)][0] != owner.token]
    if taken:
        run(
            index.conn,
            "UPDATE claims SET owner = ?, expires_ns = ? "
            "WHERE model_version_id = ? AND content_id = ?",
            taken,
        )
    index.commit()
    return mine


def _holders(
    index: Records, pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], tuple[str, int]]:
    wanted = set(pairs)
    holders: dict[tuple[int, int], tuple[str, int]] = {}
    contents = sorted({c for _, c in pairs})
    for start in range(0, len(contents), CHUNK):
        part = tuple(contents[start : start + CHUNK])
        sql = (
            "SELECT model_version_id, content_id, owner, expires_ns FROM claims "
            f"WHERE content_id IN ({marks(len(part))})"
        )
        for version, content, holder, until in run(index.conn, sql, part):
            if (version, content) in wanted:
                holders[(int(version), int(content))] = (str(holder), int(until))
    return holders


def reap(index: Records, owner: Owner) -> int:
    """Drop every claim whose owner is dead, so its pictures are tagged now, not in an hour."""
    owners = list(index.conn.execute(select(claims.c.owner).distinct()).scalars())
    dead = [o for o in owners if owner.alive(index.conn, o) is False]
    removed = 0
    if dead:
        condition: ColumnElement[bool] = claims.c.owner.in_(dead)
        removed = int(index.conn.execute(delete(claims).where(condition)).rowcount)
    index.commit()
    return removed


def release_claims(index: Records, owner: Owner) -> None:
    index.conn.execute(delete(claims).where(claims.c.owner == owner.token))
    index.commit()
