"""Per-picture export files (captions, Hydrus): each picture's own, never two pictures
in one file, and files dtindex wrote stay dtindex's through a stopped export, while a
file the user changed stays the user's."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import picture

from indexer.export import sidecars


def configure(tmp_path: Path, model: Path) -> None:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{model}"\n')


def scan(cli, *roots: str) -> None:
    code, _, err = cli("scan", *roots)
    assert code == 0, err


def captions(cli, *args: str, code: int = 0) -> str:
    got, out, err = cli("export", "--model", "means", "--format", "captions", *args)
    assert (got, out) == (code, b""), err
    return err


def test_a_second_download_gets_a_caption_of_its_own(cli, tmp_path: Path, mean_model: Path) -> None:
    """wget names a second download `image.png.1`: its caption is not `image.png.txt`,
    which is `image.png`'s (the stem `image` is shared with `image.jpg`)."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "image.png", (255, 0, 0))
    picture(gallery / "image.jpg", (0, 255, 0), fmt="JPEG")
    picture(gallery / "image.png.1", (0, 0, 255), fmt="PNG")
    scan(cli, "gallery")
    err = captions(cli, "--beside")
    assert "wrote 3 caption files" in err, err
    assert (gallery / "image.png.txt").read_text() == "c0\n"
    assert (gallery / "image.png.1.txt").read_text() == "c2\n"
    assert (gallery / "image.jpg.txt").read_text().startswith("c1")


def test_roots_whose_labels_nest_get_files_of_their_own(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """The issue's roots `/photos`, `/mnt/disk/photos/anime` and `/home/me/anime` need
    labels two components deep, where `photos/anime` was a folder inside `photos`: two
    pictures went to one file. Rebuilt below tmp_path: P, M/P/anime and X/P[1:]/anime
    (P the first root's path) tell apart only at P's depth plus one."""
    configure(tmp_path, mean_model)
    first = tmp_path / "photos"
    inside = str(first).strip("/")
    second = tmp_path / "mirror" / inside / "anime"
    third = tmp_path / "other" / inside.split("/", 1)[1] / "anime"
    picture(first / "anime" / "x.png", (255, 0, 0))
    picture(second / "x.png", (0, 0, 255))
    picture(third / "y.png", (0, 255, 0))
    scan(cli, str(first), str(second), str(third))
    err = captions(cli, "--out", "out")
    assert "wrote 3 caption files" in err, err
    files = sorted(p.read_text() for p in (tmp_path / "out").rglob("*.txt"))
    assert files == ["c0\n", "c1\n", "c2\n"], files


def test_no_root_label_is_a_folder_inside_another() -> None:
    labels = sidecars.root_labels([b"/photos", b"/mnt/disk/photos/anime", b"/home/me/anime"])
    assert labels == {
        b"/photos": b"photos",
        b"/mnt/disk/photos/anime": b"disk/photos/anime",
        b"/home/me/anime": b"home/me/anime",
    }
    assert sidecars.root_labels([b"/a/g", b"/b/g"]) == {b"/a/g": b"a/g", b"/b/g": b"b/g"}
    assert sidecars.root_labels([b"/x/Pics", b"/y/pics"]) == {
        b"/x/Pics": b"x/Pics",
        b"/y/pics": b"y/pics",
    }  # one folder where the file system folds case


def test_two_pictures_for_one_file_are_reported_and_neither_is_written(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system that folds case, `A.png.txt` and `a.png.txt` are one file: the
    export names it and both pictures, writes neither, still writes the others, exits 1."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "A.png", (255, 0, 0))
    picture(gallery / "a.png", (0, 0, 255))
    picture(gallery / "b.png", (0, 255, 0))
    scan(cli, "gallery")
    monkeypatch.setattr(sidecars, "folds_case", lambda folder: True)
    code, out, err = cli("export", "--model", "means", "--format", "hydrus", "--beside")
    assert (code, out) == (1, b""), err
    clash = [line for line in err.splitlines() if "A.png" in line]
    assert len(clash) == 1 and "a.png.txt" in clash[0].lower(), err
    assert str(gallery / "A.png") in clash[0] and str(gallery / "a.png") in clash[0], err
    assert sorted(p.name for p in gallery.glob("*.txt")) == ["b.png.txt"]


# Run in the stopped export: after `after` .txt files are renamed into place, the next one's
# rename waits (never returning) to be killed.
STOP_AT = """
import os, signal, sys
renamed, real = [], os.replace
def replace(source, target):
    if not os.fsdecode(target).endswith(".txt"):
        return real(source, target)
    if len(renamed) == int(sys.argv[1]):
        open(sys.argv[2], "w").close()
        signal.pause()
    renamed.append(target)
    real(source, target)
os.replace = replace
from indexer.cli.main import main
sys.exit(main(sys.argv[3:]))
"""


def stopped_export(tmp_path: Path, after: int, *args: str) -> None:
    """`dtindex export ARGS` in a process of its own, SIGKILLed while it writes."""
    marker = tmp_path / "stopping"
    env = {**os.environ, "DTINDEX_CONFIG": str(tmp_path / "deeptagger.toml")}
    env |= {"DTINDEX_DB": str(tmp_path / "index.sqlite"), "XDG_CACHE_HOME": str(tmp_path)}
    argv = [sys.executable, "-c", STOP_AT, str(after), str(marker), "export", *args]
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the export never got there"
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.002)  # wakes at once if the process ends
    finally:
        process.kill()
        process.wait(60)
        if process.stderr:
            process.stderr.close()


def written(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.glob("*.txt") if not p.name.startswith(".")}


@pytest.mark.parametrize("fmt", ["captions", "hydrus"])
def test_files_of_a_killed_export_stay_dtindexs(
    cli, tmp_path: Path, mean_model: Path, fmt: str
) -> None:
    """SIGKILL after 5 of 12 files, with the 6th listed but never written: the next
    export takes them up, exits 0, and leaves what a clean export writes."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    for n in range(12):
        picture(gallery / f"{n:02}.png", (n * 20, 255 - n * 20, (n * 67) % 256))
    scan(cli, "gallery")
    args = ("--model", "means", "--format", fmt, "--beside")
    stopped_export(tmp_path, 5, *args)
    assert len(written(gallery)) == 5
    code, _, err = cli("export", *args)
    assert code == 0, err
    again = written(gallery)
    assert len(again) == 12
    for path in gallery.glob("*.txt"):
        path.unlink()
    (gallery / ".dtindex-sidecars").unlink()
    code, _, err = cli("export", *args)
    assert code == 0, err
    assert written(gallery) == again


def test_a_caption_the_user_corrected_is_theirs(cli, tmp_path: Path, mean_model: Path) -> None:
    """A caption dtindex wrote and the user then edited is the user's: a re-export leaves
    it, names it, exits 1; --replace-existing replaces it, and it is dtindex's again."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", (255, 0, 0))
    picture(gallery / "b.png", (0, 0, 255))
    picture(gallery / "c\\d\ne.png", (0, 255, 0))  # listed with its line feed escaped
    scan(cli, "gallery")
    captions(cli, "--beside")
    corrected = gallery / "a.txt"
    assert corrected.read_text() == "c0\n"
    corrected.write_text("c0, red dress\n")
    (gallery / "b.txt").write_text("stale\n")  # dtindex's file a moment ago: it is the user's
    err = captions(cli, "--beside", code=1)
    assert f"{corrected}: changed since dtindex wrote it" in err, err
    assert corrected.read_text() == "c0, red dress\n"
    assert (gallery / "b.txt").read_text() == "stale\n"
    captions(cli, "--beside", "--replace-existing")
    assert corrected.read_text() == "c0\n"
    assert "wrote 0 caption files (3 already up to date)" in captions(cli, "--beside")


def test_files_listed_by_an_older_dtindex_are_still_its_own(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """A listing of names without hashes (an earlier dtindex's): those files are dtindex's
    until it next writes them, and from then on judged by what they hold. An unlisted
    file holding exactly its caption (a power cut after the rename) is taken as dtindex's."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", (255, 0, 0))
    picture(gallery / "b.png", (0, 0, 255))
    scan(cli, "gallery")
    (gallery / "a.txt").write_text("old tags\n")
    (gallery / "b.txt").write_text("c2\n")
    (gallery / ".dtindex-sidecars").write_bytes(b"a.txt\n")
    assert "(1 already up to date)" in captions(cli, "--beside")
    assert (gallery / "a.txt").read_text() == "c0\n"
    assert b"\tb.txt\n" in (gallery / ".dtindex-sidecars").read_bytes()
    (gallery / "a.txt").write_text("mine now\n")
    captions(cli, "--beside", code=1)
    assert (gallery / "a.txt").read_text() == "mine now\n"


@pytest.mark.parametrize("fmt", ["captions", "xmp", "hydrus"])
def test_an_export_beside_never_makes_a_renamed_folder_again(
    cli, tmp_path: Path, mean_model: Path, fmt: str
) -> None:
    """Found by the hunting test on the old main: after a folder was renamed, an export
    from the index not yet rescanned made the old folder again to put files into it."""
    configure(tmp_path, mean_model)
    picture(tmp_path / "gallery" / "sub" / "a.png", (255, 0, 0), old=False)
    picture(tmp_path / "gallery" / "b.png", (0, 0, 255), old=False)
    scan(cli, "gallery/sub/..")
    (tmp_path / "gallery" / "sub").rename(tmp_path / "gallery" / "moved")
    code, out, err = cli("export", "--model", "means", "--format", fmt, "--beside")
    assert (code, out) == (1, b""), err  # less than every picture's file: not 0
    assert "the picture's folder is gone (run dtindex scan)" in err, err
    assert not (tmp_path / "gallery" / "sub").exists()
    assert any(
        p.name.startswith("b.")
        for p in (tmp_path / "gallery").iterdir()
        if p != tmp_path / "gallery" / "b.png"
    )
    scan(cli, "gallery")
    code, _, err = cli("export", "--model", "means", "--format", fmt, "--beside")
    assert code == 0 and not (tmp_path / "gallery" / "sub").exists(), err
