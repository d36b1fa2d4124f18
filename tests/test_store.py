"""Migrations: from nothing, from the previous revision, and refusing a newer database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from indexer.errors import StoreError
from indexer.store.database import _engine, head_revision, open_index, upgrade


def test_new_and_empty_files_are_migrated_to_head(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    for path in (tmp_path / "sub" / "new.sqlite", empty):
        engine = open_index(path)
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                == head_revision()
            )
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() > 0
        engine.dispose()


def test_upgrade_from_the_first_revision_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    engine = _engine(path)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO roots (path, device) VALUES (x'2f67', 1)"))
    engine.dispose()
    engine = open_index(path)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM roots")).scalar() == 1
    engine.dispose()


def test_database_from_a_newer_dtindex_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    open_index(path).dispose()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_future'")
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="newer dtindex"):
            open_index(path, readonly=readonly)
    assert path.read_bytes() == before


def test_readers_ask_for_an_upgrade_instead_of_migrating(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    engine = _engine(path)
    upgrade(engine, "0001")
    engine.dispose()
    if head_revision() == "0001":
        pytest.skip("only one revision so far")
    with pytest.raises(StoreError, match="needs upgrading"):
        open_index(path, readonly=True)
