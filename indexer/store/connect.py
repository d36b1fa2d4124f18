"""Connecting to the index: the connection settings every writer and reader uses.

WAL with `synchronous=NORMAL`: a process crash (SIGKILL) loses nothing committed, and a
power cut can lose at most the last transactions but never corrupts the file; readers
never block the writer. `busy_timeout` makes concurrent writers wait instead of failing.
On PostgreSQL the server sees to durability; writers wait on each other as `writelock`
says. Kept apart from `engine` (migrations) so a process that only writes, the scan's
result writer, starts without Alembic.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event

from indexer.store.location import Location, check_driver
from indexer.store.readonly import reader_uri, writable
from indexer.store.writelock import serialise_writers

BUSY_TIMEOUT_MS = 60_000


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_read_connect(dbapi_connection: Any, _record: Any) -> None:
    """A reader sets nothing that writes (the journal mode is the file's)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.close()


def connect_engine(where: Location, readonly: bool = False) -> Engine:
    """Readers of an index that can be written connect as writers do; see `readonly`."""
    if isinstance(where, URL):
        return _server_engine(where)
    path = where
    seconds = BUSY_TIMEOUT_MS / 1000
    if not readonly or writable(path):
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": seconds})
        event.listen(engine, "connect", _on_connect)
        return engine
    uri = reader_uri(path)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=seconds, check_same_thread=False)

    engine = create_engine(f"sqlite:///{path}", creator=connect)
    event.listen(engine, "connect", _on_read_connect)
    return engine


def _server_engine(url: URL) -> Engine:
    check_driver()
    engine = create_engine(url, connect_args={"connect_timeout": 30})
    serialise_writers(engine)
    return engine


def reopen(where: Location) -> Engine:
    """A second writer's engine on an index this run has opened (so migrated and
    checked already): the scan's result writer, in a process of its own."""
    return connect_engine(where)
