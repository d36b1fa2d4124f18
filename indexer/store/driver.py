"""Statements run straight through the database driver, written once for both databases.

The scan's hot statements (`executemany` of thousands of rows, a whole group's lookups)
skip SQLAlchemy's per-row parameter handling, which cost more than the work itself. They
are written with SQLite's `?` marks; psycopg's are `%s`, so a literal `%` is doubled.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, CursorResult


def run(conn: Connection, sql: str, params: Any = ()) -> CursorResult[*tuple[Any, ...]]:
    """Execute `sql` (`?` marks) with a tuple of values, or a list of them (executemany)."""
    if conn.dialect.paramstyle != "qmark":
        sql = _format(sql)
    return conn.exec_driver_sql(sql, params)


def marks(count: int) -> str:
    """`?, ?, ...`: the marks of an `IN (...)` list of `count` values."""
    return ", ".join("?" * count)


@functools.lru_cache(maxsize=256)
def _format(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")
