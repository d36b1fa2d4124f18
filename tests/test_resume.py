"""A scan killed with SIGKILL at several points resumes with nothing lost or duplicated."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pgserver
import pytest
from conftest import BOTH, make_gallery, slow_model, wait_for
from test_watch import Watcher


def dtindex(
    tmp_path: Path, db: Path | str, *args: str, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`dtindex ARGS` on `db` with tmp_path's config; `extra`: more environment."""
    env = {**os.environ, "DTINDEX_DB": str(db), "DTINDEX_CONFIG": str(tmp_path / "deeptagger.toml")}
    env.update(extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def count(db: Path | str, sql: str) -> int:
    return pgserver.count(str(db), sql)  # 0 while not created yet


@pytest.mark.parametrize(
    "point",
    [
        "SELECT COUNT(*) FROM contents",
        "SELECT COUNT(*) FROM taggings",
        "SELECT COUNT(*) >= 30 FROM taggings",
    ],
)
@BOTH
def test_sigkill_then_resume(slow_gallery: tuple[Path, bytes], point: str, index_db: str) -> None:
    home, expected = slow_gallery  # its model is slow enough to be killed mid-scan
    gallery = home / "gallery"

    db = index_db  # killed there; the clean export is always SQLite's
    victim = dtindex(home, db, "scan", "-b", "2", str(gallery))
    wait_for(lambda: count(db, point) > 0 or victim.poll() is not None, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    tagged_before = count(db, "SELECT COUNT(*) FROM taggings")
    assert tagged_before < 60, "the scan finished before it could be killed"

    resumed = dtindex(home, db, "scan", "--json", "-b", "2", str(gallery))
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    if "://" not in db:
        assert pgserver.rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert count(db, "SELECT COUNT(*) FROM taggings") == 60
    assert count(db, "SELECT COUNT(*) FROM files") == 66
    assert dtindex(home, db, "export", "--model", "slow").communicate()[0] == expected
    assert len(expected.splitlines()) > 60


def tagged_in_log(stderr: bytes) -> int:
    """Pictures a watch reported tagging: the totals it ends with."""
    found = re.search(rb"watch stopped; since start: tagged ([\d,]+)", stderr)
    assert found, stderr
    return int(found[1].replace(b",", b""))


def watching(
    tmp_path: Path, db: Path | str, monkeypatch: pytest.MonkeyPatch, *args: str
) -> Watcher:
    """`dtindex watch ARGS` on `db`, its stderr read as it comes (to wait until it caught up)."""
    monkeypatch.setenv("DTINDEX_DB", str(db))
    monkeypatch.setenv("DTINDEX_CONFIG", str(tmp_path / "deeptagger.toml"))
    return Watcher(*args)


@BOTH
def test_two_writers_never_lock_or_tag_twice(
    tmp_path: Path, index_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = slow_model(tmp_path / "models")
    (tmp_path / "deeptagger.toml").write_text(f'[models.slow]\nmodel = "{model}"\n')
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 60)
    db = index_db

    scans = [dtindex(tmp_path, db, "scan", "--json", "-b", "2", str(gallery)) for _ in range(2)]
    results = [scan.communicate(timeout=180) for scan in scans]
    for scan, (_, err) in zip(scans, results, strict=True):
        assert scan.returncode == 0, err
        assert b"locked" not in err
    assert sum(json.loads(out)["tagged"] for out, _ in results) == 60
    assert count(db, "SELECT COUNT(*) FROM taggings") == 60

    more = tmp_path / "more"
    make_gallery(more, 30, blue=200)
    watch = watching(tmp_path, db, monkeypatch, "-b", "2", str(more))
    scan = dtindex(tmp_path, db, "scan", "--json", "-b", "2", str(more))
    out, err = scan.communicate(timeout=180)
    assert scan.returncode == 0, err
    # caught up (a stop before that is an interrupted watch, 143) and every picture tagged
    tagged = "SELECT COUNT(*) FROM taggings"
    watch.wait_until(lambda: "watching" in watch.log() and count(db, tagged) == 90, 180)
    assert watch.terminate() == 0, watch.log()
    watch_err = watch.log().encode()
    assert b"locked" not in err + watch_err
    assert json.loads(out)["tagged"] + tagged_in_log(watch_err) == 30


def test_sigkill_during_watch_then_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = slow_model(tmp_path / "models", rounds=400)  # killed mid-watch: slow enough
    (tmp_path / "deeptagger.toml").write_text(f'[models.slow]\nmodel = "{model}"\n')
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 60)
    db = tmp_path / "index.sqlite"
    watch = dtindex(tmp_path, db, "watch", "-b", "2", str(gallery))
    wait_for(lambda: count(db, "SELECT COUNT(*) FROM taggings") >= 10, watch)
    watch.send_signal(signal.SIGKILL)
    watch.wait(30)
    assert count(db, "SELECT COUNT(*) FROM taggings") < 60
    restarted = watching(tmp_path, db, monkeypatch, "-b", "2", str(gallery))
    tagged = "SELECT COUNT(*) FROM taggings"
    restarted.wait_until(lambda: "watching" in restarted.log() and count(db, tagged) == 60, 120)
    assert restarted.terminate() == 0, restarted.log()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM claims").fetchone() == (0,)
