"""Where the index lives: an SQLite file (the default) or a PostgreSQL server.

A `--db` or `database` value that is a URL (`config.is_url`) names a server;
`postgresql://` means the psycopg 3 driver, the one the `postgres` extra installs.
`sqlite:///PATH` is the same as PATH. Anything else is an SQLite file, as always.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from sqlalchemy import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from indexer.config import is_url
from indexer.errors import StoreError

Location = Path | URL
DRIVER = "postgresql+psycopg"


def locate(value: str | os.PathLike[str]) -> Location:
    """The index named by `value`: an absolute SQLite path, or a server's URL."""
    text = os.fspath(value)
    if not is_url(text):
        return Path(os.path.abspath(Path(text).expanduser()))
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise StoreError(f"{text}: not a database URL ({exc})") from None
    if url.get_backend_name() == "sqlite" and url.database:
        return locate(url.database)
    if url.get_backend_name() != "postgresql":
        raise StoreError(
            f"{shown(url)}: dtindex keeps its index in SQLite (a path) or PostgreSQL "
            "(postgresql://USER@HOST:PORT/DATABASE)"
        )
    if url.drivername != DRIVER:
        url = url.set(drivername=DRIVER)
    return url


def location_of(engine: Engine) -> Location:
    """Where an open engine's index is, for another process of the same run."""
    if engine.dialect.name == "sqlite":
        return Path(str(engine.url.database))
    return engine.url


def shown(where: Location) -> str:
    """`where` for messages: a path as it is, a URL without its password."""
    if isinstance(where, Path):
        return str(where)
    if where.get_backend_name() == "sqlite":
        return str(where.database)
    return where.render_as_string(hide_password=True)


def check_driver() -> None:
    """Refuse a server index up front when psycopg is missing, naming the extra."""
    if importlib.util.find_spec("psycopg") is None:
        raise StoreError(
            "an index on PostgreSQL needs the psycopg driver: pip install 'dtindex[postgres]'"
        )
