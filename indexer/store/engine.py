"""Opening the index (an SQLite file or a PostgreSQL database) and automatic migrations;
the connection settings are `connect`'s."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import StoreError
from indexer.store.connect import BUSY_TIMEOUT_MS, connect_engine
from indexer.store.location import Location, locate, shown
from indexer.store.readonly import check_writable, reader_uri
from indexer.store.unit import unit


def _alembic_config() -> AlembicConfig:
    import dtindex_migrations

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(dtindex_migrations.__file__).parent))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; refuse a database written by a newer dtindex."""
    cfg = _alembic_config()
    scripts = ScriptDirectory.from_config(cfg)
    with unit(engine, immediate=True) as conn:  # two processes never migrate at once
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None:
            try:
                scripts.get_revision(current)
            except CommandError:
                raise StoreError(
                    f"{shown(engine.url)}: the index was written by a newer dtindex "
                    f"(schema revision {current}); upgrade dtindex to use it"
                ) from None
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


# A file holding other tables without these is someone else's database.
OWN_TABLES = frozenset({"alembic_version", "roots", "files", "contents"})


def refuse_foreign(path: Path) -> None:
    """Refuse, untouched, a file that is not a dtindex index (`--db` pointed elsewhere).

    Read through a read-only connection of the standard library, before SQLAlchemy's
    connections switch the journal to WAL or Alembic creates tables in it.
    """
    try:
        with contextlib.closing(sqlite3.connect(reader_uri(path), uri=True)) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.OperationalError as exc:  # a full disk, permissions: not a verdict
        raise StoreError(f"{path}: cannot read the index: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not an SQLite database ({exc}); it was not changed") from None
    _refuse_other_tables(str(path), {str(name) for (name,) in rows})


def _refuse_other_tables(where: str, names: set[str]) -> None:
    if names and not names >= OWN_TABLES:
        listed = ", ".join(sorted(names)[:6])
        raise StoreError(
            f"{where}: not a dtindex index (it holds the tables {listed}); it was not changed. "
            "Name another database with --db"
        )


def open_index(where: Location | str, readonly: bool = False, create: bool = True) -> Engine:
    """Open (and for writers create or upgrade) the index at `where` (see `location`).

    `create=False`: a writer with nothing to do where there is no index (prune, forget)
    refuses as readers do, and leaves no empty index behind.
    """
    where = locate(where) if isinstance(where, str) else where
    if not create and not index_exists(where):
        raise _no_index(where)
    if isinstance(where, URL):
        return _migrated(connect_engine(where), where, readonly, foreign_check=True)
    path = where
    if readonly and not path.is_file():
        raise _no_index(path)
    if path.is_file():
        refuse_foreign(path)
    if not readonly:
        if path.is_dir():
            raise _no_index(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path.parent}: cannot create folder: {exc.strerror}") from None
        check_writable(path)
    return _migrated(connect_engine(path, readonly), path, readonly)


def _no_index(where: Location) -> StoreError:
    if isinstance(where, Path) and where.is_dir():  # `--db ~/gallery`, meant as "the index of"
        return StoreError(
            f"{where}: a folder, not an index file; name a file, such as "
            f"{where / 'index.sqlite'}, with --db"
        )
    return StoreError(f"{shown(where)}: no index here yet; run `dtindex scan` first")


def index_exists(where: Location) -> bool:
    """Whether there is an index to read at `where` yet (a file; a server database with
    our tables), so a listing can go without one rather than fail."""
    if isinstance(where, Path):
        if where.is_dir():
            raise _no_index(where)
        return where.is_file()
    engine = connect_engine(where)
    try:
        return "alembic_version" in inspect(engine).get_table_names()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"{shown(where)}: cannot open index: {getattr(exc, 'orig', None) or exc}"
        ) from None
    finally:
        engine.dispose()


def _migrated(
    engine: Engine, where: Location, readonly: bool, foreign_check: bool = False
) -> Engine:
    """`engine` once its schema is current: upgraded for writers, checked for readers.
    With `foreign_check` (a server's database), one holding other tables is refused."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if foreign_check:
                _refuse_other_tables(shown(where), set(inspect(engine).get_table_names()))
            if readonly:
                _check_current(engine)
            else:
                upgrade(engine)
            return engine
        except SQLAlchemyError as exc:
            # Two writers creating one SQLite index at once: the one that read the file
            # before the other switched it to WAL is told "locked" at once, without
            # SQLite's busy wait (which could deadlock there). Opening again settles it.
            if _locked(exc) and time.monotonic() < deadline:
                engine.dispose()
                time.sleep(0.05)
                continue
            engine.dispose()
            raise StoreError(
                f"{shown(where)}: cannot open index: {getattr(exc, 'orig', None) or exc}"
            ) from None
        except StoreError:
            engine.dispose()
            raise


def _locked(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def _check_current(engine: Engine) -> None:
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    if current == head:
        return
    name = shown(engine.url)
    if current is None:
        raise StoreError(f"{name}: not a dtindex index (or an empty one); run `dtindex scan` first")
    try:
        ScriptDirectory.from_config(_alembic_config()).get_revision(current)
    except CommandError:
        raise StoreError(
            f"{name}: the index was written by a newer dtindex (schema revision {current}); "
            "upgrade dtindex to use it"
        ) from None
    raise StoreError(f"{name}: the index needs upgrading; run `dtindex scan` once")
