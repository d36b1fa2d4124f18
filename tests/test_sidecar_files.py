"""Per-picture export files (captions, Hydrus): each picture's own, never two pictures
in one file, and files dtindex wrote stay dtindex's through a stopped export, while a
file the user changed stays the user's."""

from __future__ import annotations

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
