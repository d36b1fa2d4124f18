"""One writer at a time, on SQLite and on PostgreSQL alike.

SQLite lets one transaction write at a time: the first write takes the database's lock
and holds it to the commit. The claim protocol (`store.claims`), prune and forget are
reasoned on that: what a writer reads after its first write cannot change under it.

PostgreSQL locks rows instead. Two scans batching the same files in different orders
would then wait on each other's rows, and the server breaks such a deadlock by failing
one of them, where a scan must never fail. So a transaction on PostgreSQL takes one
transaction-scoped advisory lock before its first write (`pg_advisory_xact_lock`, freed
by the server at commit, rollback or a lost connection): writers never hold rows while
waiting for each other, the protocol's reasoning holds as written, and readers are never
blocked. Writes are few, batched statements, so serialising them costs no throughput
that a single index could use; decoding and models run in parallel as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event

WRITERS_KEY = 0x6474_696E_6465_7801  # any constant: "dtindex" and 1
_HELD = "dtindex_write_lock"
_READS = ("SELECT", "WITH", "SHOW")  # statements that never write (no data-modifying WITH)


def begin_writing(conn: Connection) -> None:
    """Take the write lock now, at the start of a transaction that reads then writes
    (migrations, prune, forget), so no other writer slips in between."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITERS_KEY})")
        conn.info[_HELD] = True


def serialise_writers(engine: Engine) -> None:
    """On a server's engine: every transaction takes the lock before its first write."""
    event.listen(engine, "begin", _new_transaction)
    event.listen(engine, "before_cursor_execute", _before_statement)


def _new_transaction(conn: Connection) -> None:
    conn.info[_HELD] = False


def _before_statement(
    conn: Connection,
    cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    if conn.info.get(_HELD) or statement.lstrip()[:6].upper().startswith(_READS):
        return
    cursor.execute(f"SELECT pg_advisory_xact_lock({WRITERS_KEY})")
    conn.info[_HELD] = True
