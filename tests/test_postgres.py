"""The index on PostgreSQL where it differs from SQLite: URLs, migrations, the partial
index, searches, and owners proven alive by advisory locks. A real server (`pg_cluster`);
the tests shared with SQLite are marked `BOTH` in their own modules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pgserver
import psycopg
import pytest
from conftest import BOTH, picture
from sqlalchemy import URL, text
from test_store import _scored_index

from indexer.config import parse_config
from indexer.errors import StoreError
from indexer.store.connect import connect_engine as _engine
from indexer.store.engine import open_index, upgrade
from indexer.store.location import locate, shown
from indexer.store.owners import SessionOwner
from indexer.store.search import search

POSTGRESQL = pytest.mark.parametrize("index_db", ["postgresql"], indirect=True)
FAR_FUTURE_NS = 2**62


def test_urls_and_paths_are_told_apart(tmp_path: Path) -> None:
    url = locate("postgresql://dt:secret@db.example:5433/gallery")
    assert isinstance(url, URL)
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "db.example",
        5433,
        "gallery",
    )
    assert "secret" not in shown(url) and "db.example:5433/gallery" in shown(url)
    assert locate(f"sqlite:///{tmp_path}/i.sqlite") == tmp_path / "i.sqlite"
    assert locate("rel/index.sqlite") == Path.cwd() / "rel" / "index.sqlite"
    with pytest.raises(StoreError, match="postgresql://USER@HOST"):
        locate("mysql://u@h/d")


def test_the_configs_database_is_a_url_as_written_or_a_path_beside_it(tmp_path: Path) -> None:
    where = tmp_path / "conf" / "deeptagger.toml"
    url = "postgresql://dt@127.0.0.1:5432/gallery"
    assert parse_config({"database": url}, where).database == url
    assert parse_config({"database": "i.sqlite"}, where).database == where.parent / "i.sqlite"


def test_migrations_from_the_first_revision_keep_and_convert_data(
    pg_cluster: pgserver.Cluster,
) -> None:
    url = pgserver.new_database(pg_cluster)
    engine = _engine(locate(url))
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO model_versions VALUES (1, 'wd', 'v', 'WD', 3, 0)"))
        conn.execute(text("INSERT INTO tags VALUES (1, 0, 'general', 9), (1, 1, 'odd', 7)"))
        conn.execute(text("INSERT INTO roots (path, device) VALUES ('\\x2f67', 4294967296)"))
    engine.dispose()
    open_index(url).dispose()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT name, category FROM tags ORDER BY idx").fetchall() == [
            ("general", "rating"),
            ("odd", "7"),
        ]
        assert conn.execute("SELECT device FROM roots").fetchone() == (2**32,)
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_scores_tag'")
        assert "WHERE (score >= (0.1)" in str(index.fetchone())
        keys = conn.execute(
            "SELECT count(*) FROM information_schema.table_constraints "
            "WHERE table_name = 'tags' AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')"
        )
        assert keys.fetchone() == (2,)  # the rebuilt table kept its keys


@BOTH
def test_searches_find_the_same_pictures(index_db: str) -> None:
    _scored_index(index_db)  # type: ignore[arg-type]
    engine = open_index(index_db, readonly=True)
    with engine.connect() as conn:
        assert search(conn, "m", None, ["a"], [], 0.5) == [b"/g/2.png"]
        assert search(conn, "m", None, ["a"], [], 0.1) == [b"/g/1.png", b"/g/2.png"]
        assert search(conn, "m", None, ["a"], ["b"], 0.01) == [b"/g/1.png", b"/g/2.png"]
        assert search(conn, "m", None, ["a", "b"], [], 0.02) == [b"/g/0.png"]
        assert search(conn, "m", "v1", ["a"], [], 0.02, any_of=True) == [
            b"/g/0.png",
            b"/g/1.png",
            b"/g/2.png",
        ]
    engine.dispose()


def _owner_process(url: str) -> tuple[subprocess.Popen[str], str]:
    """Another process holding a claim owner's lock until killed; and its token."""
    code = (
        "import sys\n"
        "from indexer.store.engine import open_index\n"
        "from indexer.store.owners import SessionOwner\n"
        "owner = SessionOwner(open_index(sys.argv[1]))\n"
        "print(owner.token, flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Ask until `condition` holds (each look is a query to the server), or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"


@POSTGRESQL
def test_a_dead_owners_claims_are_taken_over_and_a_live_ones_waited_for(
    cli, index_db: str, tmp_path: Path, mean_model: Path
) -> None:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    for i in range(4):
        picture(tmp_path / "g" / f"{i}.png", (60 * i, 100, 200))
    code, out, err = cli("scan", "--json", "g")
    assert code == 0, err
    before = cli("export", "--model", "means")[1]
    live, live_token = _owner_process(index_db)
    dead, dead_token = _owner_process(index_db)
    scan: subprocess.Popen[bytes] | None = None
    try:
        os.killpg(dead.pid, signal.SIGKILL)
        dead.wait(30)
        engine = open_index(index_db)
        owner = SessionOwner(engine)
        with engine.connect() as conn:
            assert owner.alive(conn, live_token) is True
            _wait_until(lambda: owner.alive(conn, dead_token) is False)  # the server saw it
            found = conn.execute(text("SELECT model_version_id, content_id FROM taggings"))
            (version, first), (_, second) = sorted(found.all())[:2]
            conn.execute(text("DELETE FROM taggings WHERE content_id IN (:a, :b)"),
                         {"a": first, "b": second})  # fmt: skip
            rows = [(first, dead_token), (second, live_token)]
            for content, token in rows:
                conn.execute(
                    text("INSERT INTO claims VALUES (:v, :c, :o, :e)"),
                    {"v": version, "c": content, "o": token, "e": FAR_FUTURE_NS},
                )
            conn.commit()
        owner.close()
        engine.dispose()
        scan = subprocess.Popen(
            [sys.executable, "-m", "indexer", "scan", "--json", "g"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        # the dead owner's claim is taken over at once; the live one's is waited for
        _wait_until(lambda: _tagged(index_db, first) and not _tagged(index_db, second))
        claims = pgserver.rows(index_db, "SELECT content_id, owner FROM claims")
        assert claims == [(second, live_token)] and scan.poll() is None
        os.killpg(live.pid, signal.SIGKILL)
        out, err = (part.decode() for part in scan.communicate(timeout=120))
        assert scan.returncode == 0, err  # exit 0 once the live owner's picture is tagged too
        assert json.loads(out)["tagged"] == 2, err
        assert "took over 1 claim of" in err, err
    finally:
        for process in (live, dead, scan):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            if process is not None:
                process.wait(30)
    code, out, err = cli("scan", "--json", "g")
    assert (code, json.loads(out)["tagged"]) == (0, 0), err
    assert cli("export", "--model", "means")[1] == before


def _tagged(index_db: str, content: int) -> bool:
    return pgserver.rows(
        index_db, f"SELECT count(*) FROM taggings WHERE content_id = {content}"
    ) == [(1,)]


@POSTGRESQL
def test_status_names_the_server_and_prune_vacuums(cli, index_db: str, mean_model: Path) -> None:
    picture(Path("g") / "0.png", (10, 20, 30))
    (Path("deeptagger.toml")).write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    assert cli("scan", "g")[0] == 0
    code, out, err = cli("status", "--json")
    assert code == 0, err
    assert json.loads(out)["database"] == index_db.replace("postgresql", "postgresql+psycopg")
    code, out, err = cli("prune", "--json", "--vacuum")
    assert code == 0, err
    assert json.loads(out)["contents"] == 0


def test_a_database_of_another_program_is_refused_untouched(pg_cluster: pgserver.Cluster) -> None:
    url = pgserver.new_database(pg_cluster)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE accounts (id integer)")
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"not a dtindex index .*accounts"):
            open_index(url, readonly=readonly)
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == [("accounts",)]


@POSTGRESQL
def test_models_lists_before_the_first_scan_and_readers_ask_for_one(cli) -> None:
    code, out, err = cli("models")
    assert code == 0 and b"palette" in out, err
    code, _, err = cli("status")
    assert code == 1 and "run `dtindex scan` first" in err
