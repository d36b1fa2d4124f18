"""Pictures found by content: a file without a picture's extension is indexed when its
first bytes say it is a picture, as the `gallery` program decides; known non-picture
names are never opened, and only new files are sniffed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from conftest import OLD, age, picture
from PIL import Image
from test_watch import Watcher


def encoded(fmt: str, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, fmt)
    return buffer.getvalue()


def gallery(folder: Path) -> dict[str, bool]:
    """Files, and whether each is a picture to dtindex."""
    files = {
        "photo": (encoded("JPEG"), True),  # no extension
        "scan.0001": (encoded("PNG", (1, 2, 3)), True),  # an extension nobody knows
        ".hidden": (encoded("WEBP", (9, 9, 9)), True),
        "drawing.bmp": (encoded("BMP", (4, 5, 6)), True),
        "notes.txt": (encoded("PNG", (7, 7, 7)), False),  # a known non-picture: never opened
        "sidecar.xmp": (encoded("PNG", (8, 8, 8)), False),
        "film.mp4": (encoded("JPEG", (3, 3, 3)), False),
        "README": (b"just some words, long enough to be read as a header\n", False),
        "empty": (b"", False),
    }
    folder.mkdir(parents=True)
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
        age(folder / name)
    os.mkfifo(folder / "pipe")  # opening it would block: never a picture
    return {name: wanted for name, (_, wanted) in files.items()}


def indexed(cli) -> set[str]:
    code, out, err = cli("export", "--model", "palette", "--id", "path", "-t", "0")
    assert code == 0, err
    return {Path(line.split("\t")[0]).name for line in out.decode().splitlines()}


def test_pictures_are_found_by_content_where_the_name_does_not_say(cli, tmp_path: Path) -> None:
    expected = gallery(tmp_path / "gallery")
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 0, err
    wanted = {name for name, is_picture in expected.items() if is_picture}
    assert json.loads(out)["files"] == len(wanted)
    assert indexed(cli) == wanted
    code, out, err = cli("tag", "-t", "0", "palette", "gallery")  # a folder, as a scan sees it
    assert code == 0, err
    assert {Path(line.split("\t")[0]).name for line in out.decode().splitlines()} == wanted


def test_only_new_files_are_sniffed(cli, tmp_path: Path) -> None:
    """A known picture without an extension is trusted by its stat, as every file is, and
    not sniffed again; its bytes replaced by text of the same size and mtime are read again
    all the same, told by the inode's ctime (a wrong picture's tags were the price)."""
    gallery(tmp_path / "gallery")
    assert cli("scan", "gallery")[0] == 0
    photo = tmp_path / "gallery" / "photo"
    photo.write_bytes(b"x" * photo.stat().st_size)
    os.utime(photo, ns=(OLD * 10**9, OLD * 10**9))
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 0, err
    again = json.loads(out)
    assert (again["hashed"], again["removed"], again["unchanged"]) == (1, 0, 3)


def test_configured_extensions_decide_what_is_sniffed(cli, tmp_path: Path) -> None:
    """With `extensions = ["png"]`, JPEGs are left out, also without a name that says so."""
    (tmp_path / "deeptagger.toml").write_text('[scan]\nextensions = ["PNG"]\n')
    folder = tmp_path / "gallery"
    folder.mkdir()
    for name, fmt in (("a", "JPEG"), ("b", "PNG"), ("c.jpg", "JPEG"), ("d.png", "PNG")):
        (folder / name).write_bytes(encoded(fmt))
        age(folder / name)
    code, _, err = cli("scan", "gallery")
    assert code == 0, err
    assert indexed(cli) == {"b", "d.png"}


def test_watch_finds_new_pictures_by_content(cli, tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    picture(folder / "first.png", (255, 0, 0))
    watcher = Watcher(str(folder))
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        (tmp_path / "incoming").write_bytes(encoded("PNG", (0, 0, 255)))
        (tmp_path / "incoming").rename(folder / "download")
        (tmp_path / "incoming.txt").write_bytes(encoded("PNG", (0, 255, 0)))
        (tmp_path / "incoming.txt").rename(folder / "notes.txt")
        watcher.wait_until(lambda: "download" in "".join(indexed(cli)))
    finally:
        assert watcher.terminate() == 0
    assert indexed(cli) == {"first.png", "download"}
