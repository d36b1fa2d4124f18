"""Claims: a writer about to tag a content with a model version claims the pair first.

So `scan` beside `watch`, or two scans, never tag one content twice for one version.
A claim is committed at once and released when the result is recorded.

Who holds a claim must be told apart from a process that merely got the same pid
(containers and PID namespaces reuse pids at once, and pid 1 is always alive). Each
writer holds an exclusive `flock` on a file of its own beside the database; the kernel
releases it when the process dies, however it dies. A claim whose owner's lock can be
taken is dead and is taken over at once; one whose lock file cannot be reached (another
machine without the shared folder) falls back to the lease.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, delete, select

from indexer.store.intake import CHUNK, settled_pairs
from indexer.store.records import Records
from indexer.store.retry import Attempt
from indexer.store.schema import claims

CLAIM_LEASE_NS = 3600 * 10**9


def claims_folder(engine: Engine) -> Path:
    """Beside the database file: where each writer keeps the lock that proves it lives."""
    database = engine.url.database or "index"
    return Path(database).with_name(Path(database).name + ".claims")


class Owner:
    """This process as a claim holder: a token, and the lock file that proves it lives."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{self.token}.new"
        self._fd = os.open(temporary, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(temporary, lock_path(folder, self.token))  # appears already locked

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the folder went away: the lock goes below
            os.unlink(lock_path(self.folder, self.token))
        os.close(self._fd)


def lock_path(folder: Path, token: str) -> Path:
    return folder / f"{token}.lock"


def alive(folder: Path, token: str) -> bool | None:
    """Whether the owner's process lives; None when this process cannot tell."""
    try:
        fd = os.open(lock_path(folder, token), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # it exited cleanly, or a checker found it dead before
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        with contextlib.suppress(OSError):
            os.unlink(lock_path(folder, token))
        return False
    finally:
        os.close(fd)


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
    # The insert takes SQLite's write lock, so what is read below cannot change under us.
    index.conn.exec_driver_sql(
        "INSERT OR IGNORE INTO claims (model_version_id, content_id, owner, expires_ns) "
        "VALUES (?, ?, ?, ?)",
        [(v, c, owner.token, expires) for v, c in pairs],
    )
    done = settled_pairs(index.conn, (c for _, c in pairs), attempt)
    holders = _holders(index, pairs)
    verdicts: dict[str, bool] = {owner.token: True}
    mine: set[tuple[int, int]] = set()
    for pair in pairs:
        holder, until = holders[pair]
        if holder not in verdicts:
            verdicts[holder] = _dead(owner.folder, holder)
        if pair not in done and (verdicts[holder] or until < now):
            mine.add(pair)
    taken = [(owner.token, expires, v, c) for v, c in mine if holders[(v, c)][0] != owner.token]
    if taken:
        index.conn.exec_driver_sql(
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
            f"WHERE content_id IN ({', '.join('?' * len(part))})"
        )
        for version, content, holder, until in index.conn.exec_driver_sql(sql, part):
            if (version, content) in wanted:
                holders[(int(version), int(content))] = (str(holder), int(until))
    return holders


def _dead(folder: Path, token: str) -> bool:
    return alive(folder, token) is False


def reap(index: Records, folder: Path) -> int:
    """Drop every claim whose owner is dead, so its pictures are tagged now, not in an hour."""
    owners = list(index.conn.execute(select(claims.c.owner).distinct()).scalars())
    dead = [o for o in owners if _dead(folder, o)]
    removed = 0
    if dead:
        condition: ColumnElement[bool] = claims.c.owner.in_(dead)
        removed = int(index.conn.execute(delete(claims).where(condition)).rowcount)
    index.commit()
    return removed


def release_claims(index: Records, owner: Owner) -> None:
    index.conn.execute(delete(claims).where(claims.c.owner == owner.token))
    index.commit()
