"""Migrations: from nothing, from the previous revision, and refusing a newer database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import BOTH
from sqlalchemy import text

from indexer.errors import StoreError
from indexer.store.connect import connect_engine as _engine
from indexer.store.engine import head_revision, open_index, upgrade


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


def _scored_index(path: Path) -> None:
    """Three pictures whose tag `a` scores 0.05, 0.3 and 0.8 (tag `b`: 0.9 on the first)."""
    import numpy as np

    from indexer.store.intake import add_contents
    from indexer.store.records import Records, Stat

    engine = open_index(path)
    with engine.connect() as conn:
        index = Records(conn)
        version = index.model_version("m", "v1", "m", ["a", "b"], [0, 0])
        root = index.root_id(b"/g", 1)
        ids = []
        with index.batch():
            for n in range(3):
                xxh = f"{n:032x}"
                content = add_contents(conn, [(xxh, f"{n:040x}", 1, 1, 1)])[xxh]
                index.put_file(b"/g/%d.png" % n, root, Stat(1, 0, n, 1), content, 0)
                ids.append(content)
        matrix = np.array([[0.05, 0.9], [0.3, 0.0], [0.8, 0.0]], np.float32)
        index.record_scores(version, ids, matrix, 0.01)
    engine.dispose()


def test_searches_use_the_partial_tag_index_and_stay_right_below_its_floor(
    tmp_path: Path,
) -> None:
    from indexer.store.search import search

    path = tmp_path / "index.sqlite"
    _scored_index(path)
    engine = open_index(path, readonly=True)
    statements: list[str] = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        definition = raw.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_scores_tag'"
        ).fetchone()[0]
        assert definition.endswith("WHERE score >= 0.1")
        raw.set_trace_callback(statements.append)
        assert search(conn, "m", None, ["a"], [], 0.5) == [b"/g/2.png"]
        assert search(conn, "m", None, ["a"], [], 0.1) == [b"/g/1.png", b"/g/2.png"]
        assert search(conn, "m", None, ["a"], ["b"], 0.01) == [b"/g/1.png", b"/g/2.png"]
        assert search(conn, "m", None, ["a", "b"], [], 0.02) == [b"/g/0.png"]
        assert search(conn, "m", None, ["a"], [], 0.02, any_of=True) == [
            b"/g/0.png",
            b"/g/1.png",
            b"/g/2.png",
        ]
        raw.set_trace_callback(None)
        traced = [" ".join(sql.split()) for sql in statements]  # one line, as compiled or not
        plans = {
            sql: " ".join(str(row[-1]) for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in traced
            if "FROM scores WHERE" in sql
        }
    engine.dispose()
    assert plans
    for sql, plan in plans.items():
        wants_index = "score > 0.5" in sql or "score > 0.1" in sql
        assert ("ix_scores_tag" in plan) == wants_index, (sql, plan)


def test_upgrade_to_the_partial_tag_index_keeps_scores(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    engine = _engine(path)
    upgrade(engine, "0002")
    engine.dispose()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO scores VALUES (1, 1, 0, 0.5), (1, 1, 1, 0.05)")
    open_index(path).dispose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 2
        definition = db.execute("SELECT sql FROM sqlite_master WHERE name = 'ix_scores_tag'")
        assert definition.fetchone()[0].endswith("WHERE score >= 0.1")


def test_upgrade_names_the_stored_categories_and_adds_embeddings(tmp_path: Path) -> None:
    """An index written before categories had names: an export's categories and its
    rating choice read the same after the upgrade."""
    path = tmp_path / "old.sqlite"
    engine = _engine(path)
    upgrade(engine, "0004")
    engine.dispose()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO model_versions VALUES (1, 'wd', 'v', 'WD', 4, 0)")
        db.executemany(
            "INSERT INTO tags VALUES (1, ?, ?, ?)",
            [(0, "general", 9), (1, "1girl", 0), (2, "miku", 4), (3, "odd", 7), (4, "x", None)],
        )
    open_index(path).dispose()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, category, typeof(category) FROM tags ORDER BY idx")
        assert rows.fetchall() == [
            ("general", "rating", "text"),
            ("1girl", "general", "text"),
            ("miku", "character", "text"),
            ("odd", "7", "text"),
            ("x", None, "null"),
        ]
        db.execute("INSERT INTO embeddings VALUES (1, 1, x'003c')")
        assert db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 1


def test_a_writer_opening_a_fresh_index_another_is_creating_waits(tmp_path: Path) -> None:
    """Two scans starting on a new SQLite index at once (CI caught one failing with
    "database is locked"): the second to arrive reads the empty file while the first
    holds its write lock, and SQLite answers its switch to WAL with "locked" at once,
    without a busy wait. Opening must wait for the first writer instead of failing."""
    import os
    import threading

    path = tmp_path / "index.sqlite"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("BEGIN IMMEDIATE")  # the other writer, mid-creation
    commits = threading.Timer(0.5, lambda: first.execute("COMMIT"))
    commits.start()
    try:
        engine = open_index(os.path.relpath(path))  # as typed, through '..'
    finally:
        commits.join()
        first.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


@BOTH
def test_the_migrations_make_the_schema_the_code_declares(index_db: str) -> None:
    """A fresh index migrated to head has exactly `store.schema`'s tables, columns and
    indexes: a column added in one and not the other (as 0007's `named_ns`) is found
    here, not by a user's export."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from indexer.store.schema import metadata

    engine = open_index(index_db)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert differences == [], differences
