"""One content under two names, and the name chosen to read it goes before it is read.

A content listed by several paths in one pass is decoded once, for the first path that
claims it. When that file vanishes between its hash and its decode (the user copied a
picture and moved the original away), the content's results must still come, through
another path that holds the same bytes: a watch that let it go left the copy untagged
until its hourly rescan, its export short of a clean scan's. A watch's batch tags what
was never tried among the contents it saw move or go, and no more: an old failure moved
is the rescan's to retry.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_export, export, inject_faults, picture
from test_truth_store import mark

from indexer.gallery.incremental import Indexer

UNTAGGED = """SELECT COUNT(*) FROM files f WHERE NOT EXISTS (SELECT 1 FROM taggings t
    WHERE t.content_id = f.content_id AND t.status = 'done')"""


def counts(db: Path) -> tuple[int, int]:
    """Files in the index, and those whose content has no result."""
    with sqlite3.connect(db) as conn:
        files = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        return int(files), int(conn.execute(UNTAGGED).fetchone()[0])


def vanish_the_claimer(monkeypatch: pytest.MonkeyPatch, names: set[str], away: Path) -> list[str]:
    """After the claims of a group are made, the file given the content (of `names`) is
    moved out of the gallery into `away`, as a user tidying up would; once. The returned
    list says which."""
    decide, moved = Indexer.decide, []

    def then_moved_away(self: Indexer, group: list[Any]) -> Any:
        orders = decide(self, group)
        for order in orders:
            path = os.fsdecode(order.path)
            if order.wanted and os.path.basename(path) in names and not moved:
                away.mkdir(exist_ok=True)
                shutil.move(path, away / os.path.basename(path))
                moved.append(os.path.basename(path))
        return orders

    monkeypatch.setattr(Indexer, "decide", then_moved_away)
    return moved


def wait_until(
    condition: Callable[[], bool], what: Callable[[], str], seconds: float, heard: Batches
) -> None:
    """Look again each time the watch reports a batch (or every half second)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what()
        heard.batch.wait(0.5)
        heard.batch.clear()


@pytest.fixture
def gallery(tmp_path: Path, mean_model: Path) -> Path:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    picture(tmp_path / "gallery" / "old.png", (9, 90, 200))
    return tmp_path / "gallery"


def test_a_scan_tags_the_copy_when_the_name_it_read_goes(
    cli: Any, tmp_path: Path, gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is read through its own name in the same scan: only the file that went
    is left for the next scan (exit 1), and that scan makes the index a clean scan's."""
    source = picture(gallery / "new" / "a.png", (200, 30, 30), old=False)
    shutil.copyfile(source, gallery / "new" / "b.png")
    real = Indexer.decide
    moved = vanish_the_claimer(monkeypatch, {"a.png", "b.png"}, tmp_path / "trash")
    code, _, err = cli("scan", "gallery/new/../")  # the root, named through `..`
    assert moved and code == 1, err
    assert err.count("vanished; left for the next scan") == 1, err
    assert counts(Path(os.environ["DTINDEX_DB"])) == (3, 0), err
    monkeypatch.setattr(Indexer, "decide", real)
    assert cli("scan", "gallery")[0] == 0
    assert export(cli) == clean_export(cli, monkeypatch, tmp_path, ["gallery"])


class Batches:
    """What a watch run by `watching` said: each settled batch's counts."""

    def __init__(self) -> None:
        self.ready, self.batch, self.counts = threading.Event(), threading.Event(), []

    def rescanned(self, why: str, counts: object) -> None:
        pass

    def watching(self, roots: object) -> None:
        self.ready.set()

    def changed(self, counts: object, headway: object, totals: object) -> None:
        self.counts.append(counts)
        self.batch.set()


@contextlib.contextmanager
def watching(tmp_path: Path) -> Iterator[Batches]:
    """`gallery` watched in-process (the index of the `cli` fixture) until the block ends."""
    from indexer.core import Index, WatchOptions

    heard, stop, failed = Batches(), threading.Event(), []

    def run() -> None:
        try:
            with Index.open(os.environ["DTINDEX_DB"], str(tmp_path / "deeptagger.toml")) as index:
                index.watch(
                    ["gallery"], options=WatchOptions(settle=0.5), listener=heard, stop=stop
                )
        except BaseException as exc:  # reported by the test's thread
            failed.append(exc)
            heard.ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert heard.ready.wait(60) and not failed, failed
        yield heard
    finally:
        stop.set()
        thread.join(60)
    assert not failed and not thread.is_alive(), failed


def test_a_watch_tags_the_copy_when_the_name_it_read_goes(
    cli: Any, tmp_path: Path, gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copied in while a watch runs, the original moved away after its hash: the watch
    hears it go and tags the copy through its own name, well before its periodic rescan."""
    db = Path(os.environ["DTINDEX_DB"])
    assert cli("scan", "gallery")[0] == 0
    real = Indexer.decide
    moved = vanish_the_claimer(monkeypatch, {"a.png", "b.png"}, tmp_path / "trash")
    with watching(tmp_path) as heard:
        source = picture(tmp_path / "download" / "a.png", (200, 30, 30), old=False)
        shutil.copyfile(source, tmp_path / "download" / "b.png")
        for name in ("a.png", "b.png"):  # both land by rename: they settle in one batch
            os.replace(tmp_path / "download" / name, gallery / name)
        wait_until(
            lambda: bool(moved) and counts(db) == (2, 0),
            lambda: f"the watch left {counts(db)} (files, untagged); moved {moved}",
            30,
            heard,
        )
    monkeypatch.setattr(Indexer, "decide", real)
    news = [batch.new for batch in heard.counts]
    assert 2 in news, f"the copies did not settle in one batch, so this tests nothing: {news}"
    assert export(cli) == clean_export(cli, monkeypatch, tmp_path, ["gallery"])


def test_a_watch_does_not_decode_again_failed_pictures_it_sees_moved(
    cli: Any, tmp_path: Path, gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder holding a picture whose decoder crashed (a failure the next scan retries)
    is renamed while a watch runs: the move is recorded and nothing decoded again (a
    folder of undecodable files renamed would be decoded all over); the retry is the
    rescan's. The files were read long after they were made, as a real gallery's are, so
    the rename is a move without a read (`jobs.is_moved`)."""
    inject_faults(monkeypatch, "CRASH-THIS-DECODER")
    made = mark(picture(gallery / "set" / "crash.png", (1, 2, 3)), b"CRASH-THIS-DECODER")
    code, _, err = cli("scan", "gallery")
    assert code == 1 and "to_retry 1" in err, err
    db = Path(os.environ["DTINDEX_DB"])
    with sqlite3.connect(db) as conn:
        later = made.stat().st_ctime_ns + 60 * 10**9
        conn.execute("UPDATE files SET checked_ns = ?", (later,))
    with watching(tmp_path) as heard:  # its catch-up retries the crash, once
        failures = tried(db)
        os.rename(gallery / "set", gallery / "renamed")
        wait_until(
            lambda: any(batch.moved for batch in heard.counts),
            lambda: f"the watch did not record the move: {heard.counts}",
            30,
            heard,
        )
    (batch,) = heard.counts
    assert (batch.moved, batch.hashed, batch.failed) == (1, 0, 0), batch
    assert tried(db) == failures


def tried(db: Path) -> list[tuple[str, int]]:
    """Every failure recorded, with when."""
    with sqlite3.connect(db) as conn:
        query = "SELECT status, tagged_ns FROM taggings WHERE status = 'failed'"
        return sorted(conn.execute(query).fetchall())
