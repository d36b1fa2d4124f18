"""A file found under a new name with the stat of one gone is a move only when it holds the
same bytes: file systems reuse freed inodes, and archives give every file one mtime. And a
path that vanished, hard-linked or not, leaves the export. Real SQLite, ONNX Runtime, files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from conftest import BOTH, clean_export, export, picture
from test_watch import Watcher

PROMPTLY = 15.0  # seconds; watch's periodic rescan is an hour away: only the observer


def scan(cli, *args: str) -> dict[str, int]:
    code, out, err = cli("scan", "--json", *args)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def configured(tmp_path: Path, mean_model: Path) -> Path:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    return tmp_path / "gallery"


ONE_MTIME = 1_500_000_000 * 10**9  # what an archive gives every file it unpacks


def bmp(path: Path, colour: tuple[int, int, int]) -> Path:
    """A 16x16 BMP: every one the same size, all with one mtime."""
    picture(path, colour, fmt="BMP")
    os.utime(path, ns=(ONE_MTIME, ONE_MTIME))
    return path


def unpacked(path: Path, freed: int, tries: int = 200) -> bool:
    """Write a blue BMP at `path`, as like as not on the inode `freed`: ext4 hands out the
    lowest free inode of the folder's group, and other processes free and take inodes
    too, so files made meanwhile are kept aside (as .txt, which a scan never opens)."""
    for attempt in range(tries):
        if bmp(path, (0, 0, 255)).stat().st_ino == freed:
            return True
        path.rename(path.with_name(f"{path.name}.{attempt}.txt"))
    bmp(path, (0, 0, 255))  # the picture is unpacked all the same, on another inode
    return False


def test_a_renamed_file_rewritten_in_place_with_its_old_mtime_is_read(
    cli, configured: Path, tmp_path: Path, monkeypatch
) -> None:
    red = bmp(configured / "red.bmp", (255, 0, 0))
    scan(cli, "gallery")
    # the same (device, inode, size, mtime) at a new path, the old one gone, other bytes
    os.link(red, configured / "blue.bmp")
    red.unlink()
    with open(configured / "blue.bmp", "r+b") as handle:
        handle.write(bmp(tmp_path / "blue.bmp", (0, 0, 255)).read_bytes())
    os.utime(configured / "blue.bmp", ns=(ONE_MTIME, ONE_MTIME))

    result = scan(cli, "gallery")
    assert (result["moved"], result["hashed"], result["new"], result["removed"]) == (0, 1, 1, 1)
    assert export(cli, "--id", "path") == clean_export(
        cli, monkeypatch, tmp_path, ["gallery"], "--id", "path"
    )
    assert b"c2\t1.00" in export(cli, "--id", "path")


def test_new_pictures_given_the_freed_inodes_of_deleted_ones_are_read(
    cli, configured: Path, tmp_path: Path, monkeypatch
) -> None:
    reds = [bmp(configured / f"red_{i}.bmp", (255, 0, 0)) for i in range(10)]
    scan(cli, "gallery")
    reused = 0
    for i, red in enumerate(reds):
        freed = red.stat().st_ino
        red.unlink()
        reused += unpacked(configured / f"blue_{i}.bmp", freed)
    if not reused:  # tmpfs, btrfs: inode numbers are not handed out again
        pytest.skip(f"{tmp_path}: this file system did not reuse a freed inode")

    result = scan(cli, "gallery")
    assert (result["moved"], result["new"], result["removed"]) == (0, 10, 10)
    assert result["hashed"] == 10
    assert export(cli, "--id", "path") == clean_export(
        cli, monkeypatch, tmp_path, ["gallery"], "--id", "path"
    )
    assert b"red" not in export(cli, "--id", "path")


def read_a_minute_after_made(tmp_path: Path, made: Path) -> None:
    """Say in the index that its files were read a minute after `made` was created, as a
    real gallery's were read long after they were made (these were made a moment ago)."""
    later = made.stat().st_ctime_ns + 60 * 10**9
    with closing(sqlite3.connect(tmp_path / "index.sqlite")) as db, db:
        db.execute("UPDATE files SET checked_ns = ?", (later,))


def test_a_folder_renamed_long_after_its_scan_reads_nothing(
    cli, configured: Path, tmp_path: Path
) -> None:
    pictures = [picture(configured / "set" / f"{i}.png", (i * 60, 0, 0)) for i in range(3)]
    scan(cli, "gallery")
    before = export(cli)
    read_a_minute_after_made(tmp_path, pictures[-1])
    # renaming the folder leaves its files' inodes untouched (their ctime too): no file
    # made since they were read can hold them
    (configured / "set").rename(configured / "renamed")
    result = scan(cli, "gallery")
    assert (result["moved"], result["hashed"], result["new"], result["removed"]) == (3, 0, 0, 0)
    assert export(cli) == before


def linked_pair(configured: Path) -> tuple[Path, Path]:
    """A picture with two names in one folder, beside a picture of its own (so the
    gallery is never empty)."""
    picture(configured / "other.png", (0, 255, 0))
    first = picture(configured / "set" / "a.png", (255, 0, 0))
    os.link(first, configured / "set" / "b.png")
    return first, configured / "set" / "b.png"


def test_both_names_of_a_hard_link_deleted_leave_the_export(
    cli, configured: Path, tmp_path: Path, monkeypatch
) -> None:
    first, second = linked_pair(configured)
    red = hashlib.sha1(first.read_bytes()).hexdigest().encode()
    scan(cli, "gallery")
    assert red in export(cli)
    first.unlink()
    second.unlink()
    assert scan(cli, "gallery")["removed"] == 2
    assert red not in export(cli)
    assert b"set" not in export(cli, "--id", "path")
    assert export(cli, "--id", "path") == clean_export(
        cli, monkeypatch, tmp_path, ["gallery"], "--id", "path"
    )


def test_a_renamed_folder_of_hard_links_leaves_nothing_behind(
    cli, configured: Path, tmp_path: Path, monkeypatch
) -> None:
    linked_pair(configured)
    scan(cli, "gallery")
    (configured / "set").rename(configured / "renamed")
    result = scan(cli, "gallery")
    assert (result["moved"], result["new"], result["removed"]) == (2, 0, 0)
    assert b"/set/" not in export(cli, "--id", "path")
    assert export(cli, "--id", "path") == clean_export(
        cli, monkeypatch, tmp_path, ["gallery"], "--id", "path"
    )
    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside")
    assert code == 0, err
    assert not (configured / "set").exists()  # no sidecar made a moved-away folder again
    assert (configured / "renamed" / "a.png.xmp").exists()


@BOTH
def test_watch_rereads_every_name_of_a_picture_saved_through_one(
    cli, configured: Path, tmp_path: Path, monkeypatch
) -> None:
    first = picture(configured / "a.png", (255, 0, 0))
    second = configured / "sub" / "b.png"
    second.parent.mkdir()
    os.link(first, second)
    watcher = Watcher(str(configured))

    def shows(path: Path, line: str) -> bool:
        code, out, _ = cli("export", "--model", "means", "--id", "path")
        return code == 0 and f"{path}\t{line}\n" in out.decode()

    try:
        watcher.wait_until(lambda: shows(first, "c0\t1.00") and shows(second, "c0\t1.00"))
        blue = picture(tmp_path / "staging" / "blue.png", (0, 0, 255), old=False)
        with open(first, "r+b") as handle:  # saved in place: both names hold the new bytes
            handle.write(blue.read_bytes())
            handle.truncate()
        watcher.wait_until(lambda: shows(first, "c2\t1.00"), timeout=PROMPTLY)
        watcher.wait_until(lambda: shows(second, "c2\t1.00"), timeout=PROMPTLY)
        assert not shows(second, "c0\t1.00")
    finally:
        code = watcher.terminate()
    assert code == 0, watcher.log()
    assert export(cli, "--id", "path") == clean_export(
        cli, monkeypatch, tmp_path, ["gallery"], "--id", "path"
    )


def test_an_archive_unpacked_again_over_the_same_names_is_read(
    cli, configured: Path, tmp_path: Path, monkeypatch
) -> None:
    """Found by the hunting test (seed 3): same names, same size, one mtime, and the inode
    handed back (or kept, as `cp -p` over a file keeps it): only the ctime tells."""
    reds = [bmp(configured / "sub" / f"scan{i}.bmp", (255, 0, 0)) for i in range(3)]
    scan(cli, "gallery/sub/../")
    for red in reds[:2]:  # unpacked again: deleted, then written anew
        red.unlink()
        bmp(red, (0, 0, 255))
    with open(reds[2], "r+b") as handle:  # copied over in place, the mtime kept
        handle.write(bmp(tmp_path / "blue.bmp", (0, 0, 255)).read_bytes())
    os.utime(reds[2], ns=(ONE_MTIME, ONE_MTIME))

    result = scan(cli, "gallery")
    assert (result["changed"], result["hashed"], result["tagged"]) == (3, 3, 1)  # one content
    assert export(cli, "--id", "path") == clean_export(
        cli, monkeypatch, tmp_path, ["gallery"], "--id", "path"
    )
    assert b"c0\t1.00" not in export(cli, "--id", "path")
    again = scan(cli, "gallery")  # read (again while racy: ctimes of a moment ago), not tagged
    assert (again["unchanged"], again["tagged"]) == (3, 0)


def test_changed_since_lists_pictures_copied_moved_or_renamed_since(
    cli, configured: Path, tmp_path: Path
) -> None:
    """A cron job exporting by path (`--id path`, captions) with `--changed-since` must
    see a picture tagged before TIME under the names it got since: a copy, a folder
    renamed (a move without a read), a case-only rename. The old rule (tagged since)
    listed none of them, exit 0, and their captions were never written."""
    a = picture(configured / "a.png", (200, 0, 0))
    inner = picture(configured / "sub" / "b.png", (0, 200, 0))
    c = picture(configured / "c.png", (0, 0, 200))
    picture(configured / "d.png", (90, 90, 90))  # left alone: not listed
    scan(cli, "gallery")
    with closing(sqlite3.connect(tmp_path / "index.sqlite")) as db, db:  # read long after
        later = inner.stat().st_ctime_ns + 60 * 10**9  # made, as a real gallery's files
        db.execute("UPDATE files SET checked_ns = ? WHERE path = ?", (later, bytes(inner)))
    since = str(time.time())
    shutil.copy2(a, configured / "copy.png")  # a copy, its mtime kept
    (configured / "sub").rename(configured / "renamed")
    c.rename(configured / "C.png")
    result = scan(cli, "./gallery/../gallery")
    assert (result["moved"], result["hashed"]) == (2, 2), result  # the folder's: not read
    out = export(cli, "--id", "path", "--changed-since", since)
    listed = {Path(os.fsdecode(line.split(b"\t")[0])) for line in out.splitlines()}
    names = ("a.png", "copy.png", "renamed/b.png", "C.png")  # a: the copy's content
    assert listed == {configured / name for name in names}, listed
    code, _, err = cli("export", "--model", "means", "--format", "captions", "--beside",
                       "--changed-since", since)  # fmt: skip
    assert code == 0, err
    assert (configured / "renamed" / "b.txt").exists() and (configured / "copy.txt").exists()
    assert not (configured / "d.txt").exists()


def test_changed_since_lists_a_moved_file_saved_over_since(
    cli, configured: Path, tmp_path: Path
) -> None:
    """A file moved once, then saved over (`cp -p`) with a picture already tagged: its
    path now shows that picture, and an export since a moment after the move must list
    it (found in review: the move's time hid the later read)."""
    a = picture(configured / "a.png", (200, 0, 0))
    other = picture(configured / "d.png", (90, 90, 90))
    scan(cli, "gallery")
    with closing(sqlite3.connect(tmp_path / "index.sqlite")) as db, db:  # read long after
        later = a.stat().st_ctime_ns + 60 * 10**9  # made, as a real gallery's files
        db.execute("UPDATE files SET checked_ns = ? WHERE path = ?", (later, bytes(a)))
    (configured / "sub").mkdir()
    a.rename(configured / "sub" / "a.png")
    (configured / "sub").rename(configured / "moved")  # the folder's: a move, not read
    result = scan(cli, "gallery")
    assert (result["moved"], result["hashed"]) == (1, 0), result
    moved = configured / "moved" / "a.png"
    with closing(sqlite3.connect(tmp_path / "index.sqlite")) as db, db:  # read long ago
        db.execute("UPDATE files SET checked_ns = 1 WHERE path = ?", (bytes(moved),))
    since = str(time.time())
    shutil.copy2(other, moved)  # saved over, d.png's bytes and mtime
    result = scan(cli, "gallery")
    assert (result["changed"], result["tagged"]) == (1, 0), result
    out = export(cli, "--id", "path", "--changed-since", since)
    listed = {Path(os.fsdecode(line.split(b"\t")[0])) for line in out.splitlines()}
    assert moved in listed, listed
