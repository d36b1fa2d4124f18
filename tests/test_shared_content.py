"""One content under two names, and the name chosen to read it goes before it is read.

A content listed by several paths in one pass is decoded once, for the first path that
claims it. When that file vanishes between its hash and its decode (the user copied a
picture and moved the original away), the content's results must still come, through
another path that holds the same bytes: a watch that let it go left the copy untagged
until its hourly rescan, its export short of a clean scan's.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import export, picture

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


def wait_until(condition: Callable[[], bool], what: Callable[[], str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.05)  # polling a condition with a deadline, not a synchronisation


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
    code, _, err = cli("scan", "gallery/new/../")
    assert moved and code == 1, err
    assert err.count("vanished; left for the next scan") == 1, err
    assert counts(Path(os.environ["DTINDEX_DB"])) == (3, 0), err
    monkeypatch.setattr(Indexer, "decide", real)
    assert cli("scan", "gallery")[0] == 0
    assert export(cli) == clean_export(cli, tmp_path)


def clean_export(cli: Any, tmp_path: Path) -> bytes:
    """What a clean scan of the gallery, into an index of its own, exports."""
    clean = str(tmp_path / "clean.sqlite")
    assert cli("--db", clean, "scan", "gallery")[0] == 0
    return export(cli, "--db", clean)


def test_a_watch_tags_the_copy_when_the_name_it_read_goes(
    cli: Any, tmp_path: Path, gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copied in while a watch runs, the original moved away after its hash: the watch
    hears it go and tags the copy through its own name, well before its periodic rescan."""
    from indexer.core import Index, WatchOptions
    from indexer.gallery.following import Unheard

    db = Path(os.environ["DTINDEX_DB"])
    assert cli("scan", "gallery")[0] == 0
    real = Indexer.decide
    moved = vanish_the_claimer(monkeypatch, {"a.png", "b.png"}, tmp_path / "trash")
    watching, stop, failed = threading.Event(), threading.Event(), []

    class Listener(Unheard):
        def watching(self, roots: object) -> None:
            watching.set()

    def run() -> None:
        try:
            with Index.open(str(db), str(tmp_path / "deeptagger.toml")) as index:
                index.watch(
                    ["gallery"], options=WatchOptions(settle=0.5), listener=Listener(), stop=stop
                )
        except BaseException as exc:  # reported by the test's thread
            failed.append(exc)
            watching.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert watching.wait(60) and not failed, failed
        source = picture(tmp_path / "download" / "a.png", (200, 30, 30), old=False)
        shutil.copyfile(source, tmp_path / "download" / "b.png")
        for name in ("a.png", "b.png"):  # both land by rename: they settle in one batch
            os.replace(tmp_path / "download" / name, gallery / name)
        wait_until(
            lambda: bool(moved) and counts(db) == (2, 0),
            lambda: f"the watch left {counts(db)} (files, untagged); moved {moved}",
            30,
        )
    finally:
        stop.set()
        thread.join(60)
    assert not failed and not thread.is_alive(), failed
    monkeypatch.setattr(Indexer, "decide", real)
    assert export(cli) == clean_export(cli, tmp_path)
