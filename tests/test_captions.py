"""Caption names: each picture's caption is named by the picture's own name alone, so it
stays the same as other files come and go, and a caption dtindex wrote for a picture
that is gone is removed, while a file the user wrote or changed stays."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from conftest import picture

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def configure(tmp_path: Path, model: Path) -> None:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{model}"\n')


def rescan_and_export(cli, *roots: str, code: int = 0) -> str:
    got, _, err = cli("scan", "-q", "--allow-empty", *roots)
    assert got == 0, err
    got, out, err = cli("export", "-m", "means", "--format", "captions", "--beside")
    assert (got, out) == (code, b""), err
    return err


def captions(folder: Path) -> dict[str, str]:
    """Every caption below `folder`, by its path below it."""
    found = folder.rglob("*.txt")
    return {p.relative_to(folder).as_posix(): p.read_text() for p in found}


def clean_captions(cli, gallery: Path) -> dict[str, str]:
    """What an export into a copy of the gallery without any caption or listing writes."""
    copy = gallery.parent / "clean-gallery"
    shutil.copytree(gallery, copy, ignore=shutil.ignore_patterns("*.txt", ".dtindex-*"))
    try:
        got, _, err = cli("--db", "clean.sqlite", "scan", "-q", str(copy))
        assert got == 0, err
        got, _, err = cli("--db", "clean.sqlite", "export", "-m", "means", "--format",
                          "captions", "--beside")  # fmt: skip
        assert got == 0, err
        return captions(copy)
    finally:
        shutil.rmtree(copy)
        for leftover in gallery.parent.glob("clean.sqlite*"):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()


def test_caption_names_stay_as_neighbours_come_and_go(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """The new user's trial: a scanner's `scan.0001`, wget's second download `image.png.1`,
    and a picture moved into a subfolder. Each picture keeps one caption under one name,
    and the caption of the moved picture's old place goes."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "g3"
    picture(gallery / "scan.0001", RED, fmt="JPEG")
    picture(gallery / "image.png", BLUE)
    rescan_and_export(cli, "g3")
    assert captions(gallery) == {"scan.0001.txt": "c0\n", "image.txt": "c2\n"}

    picture(gallery / "scan.0002", GREEN, fmt="JPEG")
    picture(gallery / "image.png.1", RED, fmt="PNG")
    rescan_and_export(cli, "g3")
    first = {"scan.0001.txt": "c0\n", "scan.0002.txt": "c1\n", "image.png.1.txt": "c0\n"}
    assert captions(gallery) == {**first, "image.txt": "c2\n"}

    (gallery / "sub").mkdir()
    (gallery / "image.png").rename(gallery / "sub" / "image.png")
    err = rescan_and_export(cli, "g3")
    assert captions(gallery) == {**first, "sub/image.txt": "c2\n"}
    assert "removed 1 caption file that dtindex wrote for a picture no longer there" in err
    assert captions(gallery) == clean_captions(cli, gallery)


def test_names_that_differ_by_a_suffix_get_captions_of_their_own(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """`.1` and `.0001` are no picture extensions: those pictures keep their whole name,
    so `image.png` (`image.txt`) and `image.png.1`, `scan.0001` and `scan.0002` never
    share a caption, whichever of them are there."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "image.png", RED)
    picture(gallery / "image.png.1", GREEN, fmt="PNG")
    picture(gallery / "scan.0001", BLUE, fmt="JPEG")
    picture(gallery / "scan.0002", RED, fmt="JPEG")
    picture(gallery / "Photo.JPG", GREEN, fmt="JPEG")
    err = rescan_and_export(cli, "gallery")
    assert "wrote 5 caption files" in err, err
    assert captions(gallery) == {
        "image.txt": "c0\n",
        "image.png.1.txt": "c1\n",
        "scan.0001.txt": "c2\n",
        "scan.0002.txt": "c0\n",
        "Photo.txt": "c1\n",
    }


def test_a_deleted_pictures_caption_goes_and_the_users_stay(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """Deleting pictures: the caption dtindex wrote goes, also in a folder no picture is
    left in and when the gallery holds none; a caption the user corrected and the user's
    own notes stay, and the export exits 0 (no picture's file is in the way)."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    for name, colour in (("a.png", RED), ("b.png", GREEN), ("c.png", BLUE), ("d.png", RED)):
        picture(gallery / name, colour)
    picture(gallery / "sub" / "e.png", GREEN)
    rescan_and_export(cli, "gallery")
    assert (gallery / "sub" / "e.txt").read_text() == "c1\n"
    (gallery / "b.txt").write_text("c1, a green field\n")  # corrected: the user's now
    (gallery / "notes.txt").write_text("my own notes\n")
    for name in ("a.png", "b.png", "d.png", "sub/e.png"):
        (gallery / name).unlink()
    err = rescan_and_export(cli, "gallery")
    assert "removed 3 caption files that dtindex wrote for pictures no longer there" in err
    assert captions(gallery) == {
        "b.txt": "c1, a green field\n",
        "c.txt": "c2\n",
        "notes.txt": "my own notes\n",
    }
    (gallery / "c.png").unlink()
    rescan_and_export(cli, "gallery")
    assert captions(gallery) == {"b.txt": "c1, a green field\n", "notes.txt": "my own notes\n"}


def test_only_captions_no_indexed_picture_has_go(cli, tmp_path: Path, mean_model: Path) -> None:
    """The captions of another export (`--changed-since`, `--limit`) stay: only a caption no
    indexed picture has goes; a picture renamed keeps its tags under its new name."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", RED)
    picture(gallery / "b.png", GREEN)
    rescan_and_export(cli, "gallery")
    (gallery / "a.png").rename(gallery / "renamed.png")
    got, _, err = cli("scan", "-q", "gallery")
    assert got == 0, err
    got, _, err = cli("export", "-m", "means", "--format", "captions", "--beside",
                      "--changed-since", str(time.time() + 3600))  # fmt: skip
    assert got == 0, err
    assert captions(gallery) == {"b.txt": "c1\n"}  # a.txt went; nothing written
    rescan_and_export(cli, "gallery")
    assert captions(gallery) == {"b.txt": "c1\n", "renamed.txt": "c0\n"}


def test_two_pictures_of_one_stem_share_no_caption(cli, tmp_path: Path, mean_model: Path) -> None:
    """`1.png` and `1.jpg` would both be captioned `1.txt` (which a training tool reads for
    either): the export names the file and both pictures, writes it for neither, removes
    the `1.txt` it wrote when `1.png` was alone, and exits 1; once `1.jpg` is renamed, each
    picture has its caption."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "1.png", RED)
    picture(gallery / "2.png", BLUE)
    rescan_and_export(cli, "gallery")
    picture(gallery / "1.jpg", GREEN, fmt="JPEG")
    err = rescan_and_export(cli, "gallery", code=1)
    clash = f"{gallery / '1.txt'}: the caption file of {gallery / '1.jpg'} and {gallery / '1.png'}"
    assert clash in err, err
    assert captions(gallery) == {"2.txt": "c2\n"}
    (gallery / "1.jpg").rename(gallery / "1b.jpg")
    rescan_and_export(cli, "gallery")
    assert captions(gallery) == {"1.txt": "c0\n", "1b.txt": "c1\n", "2.txt": "c2\n"}


def test_hydrus_files_beside_the_captions_stay(cli, tmp_path: Path, mean_model: Path) -> None:
    """Hydrus files (`a.png.txt`) are listed in the same manifest as captions: a caption
    export leaves each present picture's alone."""
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", RED)
    picture(gallery / "b.png", GREEN)
    rescan_and_export(cli, "gallery")
    got, _, err = cli("export", "-m", "means", "--format", "hydrus", "--beside")
    assert got == 0, err
    err = rescan_and_export(cli, "gallery")
    assert "removed" not in err, err
    assert captions(gallery) == {
        "a.txt": "c0\n",
        "a.png.txt": "c0\n",
        "b.txt": "c1\n",
        "b.png.txt": "c1\n",
    }
