"""Claim holders, and how a writer tells whether another one still lives.

Who holds a claim must be told apart from a process that merely got the same pid
(containers and PID namespaces reuse pids at once, and pid 1 is always alive). So each
writer holds a lock that the system frees when the writer dies, however it dies:

- On SQLite, an exclusive `flock` on a file of its own beside the database; the kernel
  frees it with the process. A lock file that cannot be reached (another machine without
  the shared folder) cannot tell, and the claim's lease decides.
- On PostgreSQL, a session advisory lock held by a connection of its own; the server
  frees it when the session ends (the process died, or its connection was lost). Any
  writer on any machine asks the server, so a dead owner is known at once everywhere.
  Chosen over `SELECT ... FOR UPDATE SKIP LOCKED`, which would need a transaction held
  open for as long as a picture is decoded and tagged: the claims table, its commit-at-
  once rows and the lease stay exactly as on SQLite, only the proof of life differs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from pathlib import Path
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    Integer,
    Text,
    bindparam,
    cast,
    column,
    exists,
    func,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import OID

from indexer.store.unit import batch


class Owner(Protocol):
    """This process as a claim holder: its token, and a verdict on other tokens."""

    token: str

    def alive(self, conn: Connection, token: str) -> bool | None:
        """Whether the holder of `token` lives; None when this process cannot tell."""

    def close(self) -> None:
        """Give up the proof of life: this owner's claims are dead from here on."""


def owner_for(engine: Engine) -> Owner:
    if engine.dialect.name == "postgresql":
        return SessionOwner(engine)
    return FileOwner(claims_folder(engine))


def _token(tail: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{tail}"


# -- SQLite: lock files beside the database -----------------------------------------------
def claims_folder(engine: Engine) -> Path:
    """Beside the database file: where each writer keeps the lock that proves it lives."""
    database = engine.url.database or "index"
    return Path(database).with_name(Path(database).name + ".claims")


def lock_path(folder: Path, token: str) -> Path:
    return folder / f"{token}.lock"


class FileOwner:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.token = _token(secrets.token_hex(6))
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{self.token}.new"
        self._fd = os.open(temporary, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(temporary, lock_path(folder, self.token))  # appears already locked

    def alive(self, conn: Connection, token: str) -> bool | None:
        return file_alive(self.folder, token)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the folder went away: the lock goes below
            os.unlink(lock_path(self.folder, self.token))
        os.close(self._fd)


def file_alive(folder: Path, token: str) -> bool | None:
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


# -- PostgreSQL: session advisory locks --------------------------------------------------
_PREFIX = "pg"
# Whether any session of this database holds the advisory lock of a bigint key: pg_locks
# splits the key into classid (high 32 bits) and objid (low 32 bits), objsubid 1.
_LOCKS = table(
    "pg_locks",
    column("locktype", Text),
    column("granted", Boolean),
    column("objsubid", Integer),
    column("classid", OID),
    column("objid", OID),
    column("database", OID),
)
_DATABASES = table("pg_database", column("oid", OID), column("datname", Text))
_THIS_DATABASE = select(_DATABASES.c.oid).where(_DATABASES.c.datname == func.current_database())
_HELD = select(
    exists().where(
        _LOCKS.c.locktype == "advisory",
        _LOCKS.c.granted,
        _LOCKS.c.objsubid == 1,
        _LOCKS.c.classid == cast(bindparam("high", type_=BigInteger), OID),
        _LOCKS.c.objid == cast(bindparam("low", type_=BigInteger), OID),
        _LOCKS.c.database == _THIS_DATABASE.scalar_subquery(),
    )
)


class SessionOwner:
    def __init__(self, engine: Engine) -> None:
        self._key = secrets.randbits(63)
        self.token = _token(f"{_PREFIX}{self._key:016x}")
        self._conn = engine.connect()
        with batch(self._conn):  # a session lock outlives the transaction; none stays open
            key = bindparam("key", self._key, type_=BigInteger)
            self._conn.execute(select(func.pg_advisory_lock(key)))

    def alive(self, conn: Connection, token: str) -> bool | None:
        tail = token.rsplit(":", 1)[-1]
        if not tail.startswith(_PREFIX):
            return None  # not a server owner's token: the lease decides
        try:
            key = int(tail[len(_PREFIX) :], 16)
        except ValueError:
            return None
        values = {"high": key >> 32, "low": key & 0xFFFF_FFFF}
        return bool(conn.execute(_HELD, values).scalar_one())

    def close(self) -> None:
        """End the session itself (not back to the pool): the server frees its lock then,
        even where the connection is already broken and no unlock could be sent."""
        self._conn.invalidate()
        self._conn.close()
