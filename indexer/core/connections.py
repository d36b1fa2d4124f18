"""The database side of `Index`: its engines, opened when a method first needs one
(read-only for the readers, so `status` creates no index) and closed by `close` or on
leaving a `with` block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from indexer.store.engine import open_index
from indexer.store.location import Location, shown


class Connections:
    """The engines of the index at `location`."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._reader: Engine | None = None
        self._writer: Engine | None = None

    def close(self) -> None:
        """Close the database connections (also done on leaving a `with` block)."""
        for engine in (self._reader, self._writer):
            if engine is not None:
                engine.dispose()
        self._reader = self._writer = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def database(self) -> str:
        """Where the index is, for messages (a URL without its password)."""
        return shown(self.location)

    def engine(self, create: bool = True) -> Engine:
        """The writers' engine; `create=False`: an index must exist already."""
        if self._writer is None:
            self._writer = open_index(self.location, create=create)
        return self._writer

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reading: the writers' engine where one is open, else a
        read-only one (which never creates or upgrades the index)."""
        engine = self._writer or self._reader
        if engine is None:
            engine = self._reader = open_index(self.location, readonly=True)
        with engine.connect() as conn:
            yield conn
