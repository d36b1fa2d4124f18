"""Statements the scan runs by the thousand, handed straight to the database driver.

SQLAlchemy's own `executemany` converts every row's parameters in Python, which for the
scan's bulk writes (a group's files and contents, a batch's ~150 scores per picture) cost
more than the database's work. So those few statements, and the rescan's read of a
folder's rows, are still written as Core expressions over `store.schema`, compiled by
SQLAlchemy once per dialect in the driver's positional style (SQLite's `?`, psycopg's
`%s`, a literal `%` escaped by the compiler), and then run through the driver with
plain tuples. Everything else goes through `Connection.execute` as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

# The dialect's INSERT, the one that has ON CONFLICT (`sqlite.insert`, `postgresql.insert`).
Insert = Callable[..., Any]
INSERTS: dict[str, Insert] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Direct:
    """A Core statement run through the driver with positional tuples.

    `build` makes the statement from the dialect's INSERT (upserts differ in class per
    dialect); `order` names its bound parameters in the order the tuples hold them,
    checked against the compiled statement so a tuple can never fill the wrong column.
    """

    def __init__(self, build: Callable[[Insert], Executable], *order: str) -> None:
        self._build, self._order = build, list(order)
        self._sql: dict[str, str] = {}

    def sql(self, dialect: Dialect) -> str:
        found = self._sql.get(dialect.name)
        if found is None:
            statement = self._build(INSERTS[dialect.name])
            assert isinstance(statement, ClauseElement)
            compiled = statement.compile(dialect=_positional(dialect))
            assert isinstance(compiled, SQLCompiler)
            names = list(compiled.positiontup or ())
            if names != self._order:
                raise ValueError(f"parameters are {names}, not {self._order}: {compiled}")
            found = self._sql[dialect.name] = compiled.string
        return found

    def run(
        self, conn: Connection, params: tuple[Any, ...] | Sequence[tuple[Any, ...]]
    ) -> CursorResult[Any]:
        """Execute with one tuple of values, or a list of them (`executemany`)."""
        return conn.exec_driver_sql(self.sql(conn.dialect), params)  # type: ignore[arg-type]


def _positional(dialect: Dialect) -> Dialect:
    """A dialect like `dialect` that writes positional markers: psycopg's default is
    `%(name)s`, which would need a dict per row."""
    if dialect.positional:
        return dialect
    positional: Dialect = type(dialect)(paramstyle="format")  # type: ignore[call-arg]
    return positional
