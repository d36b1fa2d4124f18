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
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, delete, insert, select, update

from indexer.store.records import Records
from indexer.store.retry import Attempt
from indexer.store.schema import claims, taggings

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


def claim(
    index: Records,
    version_id: int,
    content_id: int,
    owner: Owner,
    attempt: Attempt,
) -> bool:
    """Claim a (content, model version) pair, or say another live process holds it or it
    needs nothing (`attempt` says which earlier failures are tried again).

    The claim is committed at once so other writers see it; it is released when the
    result is recorded. Claims of dead processes, or past their lease, are taken over.
    """
    now = time.time_ns()
    key = (claims.c.model_version_id == version_id) & (claims.c.content_id == content_id)
    index.conn.execute(
        insert(claims)
        .prefix_with("OR IGNORE")
        .values(
            model_version_id=version_id,
            content_id=content_id,
            owner=owner.token,
            expires_ns=now + CLAIM_LEASE_NS,
        )
    )  # the write takes SQLite's write lock, so the check below is atomic
    holder, expires = index.conn.execute(
        select(claims.c.owner, claims.c.expires_ns).where(key)
    ).one()
    done = index.conn.execute(
        select(taggings.c.status).where(
            taggings.c.model_version_id == version_id,
            taggings.c.content_id == content_id,
            attempt.settled(),
        )
    ).first()
    mine = holder == owner.token or expires < now or _dead(owner.folder, holder)
    if mine and done is None:
        index.conn.execute(
            update(claims).where(key).values(owner=owner.token, expires_ns=now + CLAIM_LEASE_NS)
        )
    index.commit()
    return mine and done is None


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
