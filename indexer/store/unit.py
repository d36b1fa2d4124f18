"""Where transactions begin and end: the one place in dtindex that commits.

`unit(engine)` is one transaction on a connection of its own: committed when the block
ends, rolled back if it raises. With `immediate` it takes the write lock before anything
else (`store.writelock`), so nothing changes between its reads and its writes (prune,
forget, migrations).

`batch(conn)` is a unit of work on a connection a scan keeps open for its whole run.
Blocks nest and the outermost one commits, so a store function that must be atomic says
so with a `batch` of its own and a caller can still group several into one transaction.
A batch begins by ending whatever transaction reads left open: on SQLite a write from a
stale read snapshot is refused at once, without the busy wait. `settle(conn)` ends such a
read transaction between batches, so no snapshot is held while the scan waits on others.
Every write goes through a batch (or a unit); a transaction `settle` ends is rolled
back, so a write outside one would be lost and tests would show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from indexer.store.writelock import begin_writing

_OPEN = "dtindex_batch_open"


@contextmanager
def unit(engine: Engine, immediate: bool = False) -> Iterator[Connection]:
    """One transaction on a fresh connection; `immediate`: holding the write lock from
    its start."""
    with engine.begin() as conn:
        if immediate:
            begin_writing(conn)
        yield conn


@contextmanager
def batch(conn: Connection) -> Iterator[Connection]:
    """One transaction on `conn`: committed when the outermost batch ends, rolled back
    if it raises."""
    if conn.info.get(_OPEN):
        yield conn
        return
    if conn.in_transaction():
        conn.rollback()  # what reads began: its snapshot may be stale by now
    conn.info[_OPEN] = True
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()  # a failed commit too (a full disk): the connection stays usable
        raise
    finally:
        conn.info[_OPEN] = False


def settle(conn: Connection) -> None:
    """End the transaction reads began (none of them writes); inside a batch, nothing."""
    if not conn.info.get(_OPEN) and conn.in_transaction():
        conn.rollback()
