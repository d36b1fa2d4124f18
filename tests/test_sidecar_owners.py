"""Whose a caption or Hydrus file is: the format that wrote it, and where it was exported.

Captions and Hydrus sidecars share a name (`dup.png.txt`) where two pictures share a
stem: neither format replaces nor removes the other's file. A full export beside the
pictures removes the files it left behind under names no picture has any more (a picture
gone or renamed, a caption renamed by a neighbour), and nothing else: not a file an
`--out` export wrote, not one written meanwhile by another export for a picture added
meanwhile, not the other format's, not one the user corrected, not one an older dtindex
listed."""

from __future__ import annotations

import contextlib
import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import picture

from indexer.export import files, ownership

TWO_TAGS = [(200, 100, 0), (0, 200, 100), (100, 0, 200), (150, 0, 100)]  # c0 c1 ... pairs


def configure(tmp_path: Path, model: Path) -> None:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{model}"\n')


def scan(cli, *roots: str) -> None:
    code, _, err = cli("scan", *roots)
    assert code == 0, err


def export(cli, fmt: str, *args: str, code: int = 0) -> str:
    got, out, err = cli("export", "--model", "means", "--format", fmt, *args)
    assert (got, out) == (code, b""), err
    return err


def files_in(folder: Path) -> dict[str, str]:
    """The .txt files in `folder` and what they hold."""
    return {p.name: p.read_text() for p in sorted(folder.glob("*.txt"))}


def test_captions_and_hydrus_files_never_replace_each_other(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """The issue's repro: `hc/dup.jpg.txt` is dup.jpg's caption (its stem is shared) and
    its Hydrus sidecar. Each format now leaves the other's file, names it, and exits 1,
    still writing the others; --replace-existing replaces it."""
    configure(tmp_path, mean_model)
    hc = tmp_path / "hc"
    picture(hc / "dup.png", TWO_TAGS[0])
    picture(hc / "dup.jpg", TWO_TAGS[1], fmt="JPEG")
    picture(hc / "solo.png", TWO_TAGS[2])
    scan(cli, "hc")
    export(cli, "captions", "--beside")
    captions = files_in(hc)
    assert captions["dup.jpg.txt"].startswith("c1, c2")
    err = export(cli, "hydrus", "--beside", code=1)
    for name in ("dup.png.txt", "dup.jpg.txt"):
        said = [line for line in err.splitlines() if f"{hc / name}:" in line]
        assert len(said) == 1, err
        assert "dtindex wrote it as a caption file" in said[0], err
        assert "captions and Hydrus sidecars beside these pictures share that name" in said[0]
        assert "--out DIR" in said[0], err
    assert "wrote 1 Hydrus sidecar" in err, err  # solo.png.txt: the others still written
    assert files_in(hc) == {**captions, "solo.png.txt": "c2\nc0\n"}
    assert "wrote 0 caption files (3 already up to date)" in export(cli, "captions", "--beside")
    assert files_in(hc)["dup.jpg.txt"] == captions["dup.jpg.txt"]  # no flip

    export(cli, "hydrus", "--beside", "--replace-existing")
    assert files_in(hc)["dup.jpg.txt"] == "c1\nc2\n"
    err = export(cli, "captions", "--beside", code=1)
    assert f"{hc / 'dup.jpg.txt'}: dtindex wrote it as a Hydrus sidecar" in err, err
    assert files_in(hc)["dup.jpg.txt"] == "c1\nc2\n"


def test_no_tag_passing_removes_no_file_of_the_other_format(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """A picture no caption tag passes for any more has its caption removed; where the
    caption's name is its Hydrus sidecar, that file stays."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "dup.png", TWO_TAGS[0])
    picture(g / "dup.jpg", TWO_TAGS[1], fmt="JPEG")
    scan(cli, "g")
    export(cli, "hydrus", "--beside")
    sidecars = files_in(g)
    export(cli, "captions", "--beside", "-t", "0.99")
    assert files_in(g) == sidecars


def test_a_caption_renamed_by_a_neighbour_leaves_no_stale_file(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """The issue's repro: dup.png alone gets dup.txt; with dup.jpg beside it the captions
    are dup.png.txt and dup.jpg.txt, and dup.txt (dup.png's tags, read by kohya as
    dup.jpg's caption) goes. With dup.jpg gone again, dup.txt is back and the others go."""
    configure(tmp_path, mean_model)
    cg = tmp_path / "cg"
    picture(cg / "dup.png", TWO_TAGS[0])
    scan(cli, "cg")
    export(cli, "captions", "--beside")
    assert files_in(cg) == {"dup.txt": "c0, c1\n"}
    picture(cg / "dup.jpg", TWO_TAGS[1], fmt="JPEG")
    scan(cli, "cg")
    err = export(cli, "captions", "--beside")
    assert set(files_in(cg)) == {"dup.png.txt", "dup.jpg.txt"}, err
    assert files_in(cg)["dup.png.txt"] == "c0, c1\n"
    assert "removed 1 caption file that dtindex wrote for pictures no longer there" in err
    (cg / "dup.jpg").unlink()
    scan(cli, "cg")
    err = export(cli, "captions", "--beside")
    assert files_in(cg) == {"dup.txt": "c0, c1\n"}, err
    assert "removed 2 caption files that dtindex wrote" in err, err


@pytest.mark.parametrize("fmt", ["captions", "hydrus"])
def test_a_deleted_or_renamed_picture_takes_its_file_along(
    cli, tmp_path: Path, mean_model: Path, fmt: str
) -> None:
    """Deleted, renamed, renamed in case only (on a file system that keeps case): the
    file dtindex wrote under the old name goes, the new name's is written."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    for name, colour in zip(["a.png", "b.png", "c.png"], TWO_TAGS, strict=False):
        picture(g / name, colour)
    scan(cli, "g")
    export(cli, fmt, "--beside")
    suffix = ".txt" if fmt == "captions" else ".png.txt"
    assert set(files_in(g)) == {f"{n}{suffix}" for n in "abc"}
    (g / "a.png").unlink()
    (g / "b.png").rename(g / "renamed.png")
    (g / "c.png").rename(g / "C.png")
    if (g / "c.png").exists():
        pytest.skip("this file system folds case")
    scan(cli, "g")
    err = export(cli, fmt, "--beside")
    assert set(files_in(g)) == {f"renamed{suffix}", f"C{suffix}"}, err
    noun = "caption files" if fmt == "captions" else "Hydrus sidecars"
    assert f"removed 3 {noun} that dtindex wrote" in err, err


def test_a_caption_the_user_corrected_stays_though_its_picture_went(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    for name, colour in zip(["a.png", "b.png", "c.png"], TWO_TAGS, strict=False):
        picture(g / name, colour)
    scan(cli, "g")
    export(cli, "captions", "--beside")
    (g / "b.txt").write_text("c1, c2, my own words\n")
    (g / "b.png").unlink()
    (g / "c.png").unlink()
    scan(cli, "g")
    err = export(cli, "captions", "--beside")
    assert files_in(g) == {"a.txt": "c0, c1\n", "b.txt": "c1, c2, my own words\n"}, err
    assert "removed 1 caption file" in err, err


def nested_gallery(tmp_path: Path) -> Path:
    """g/a.png, g/sub/b.png, g/sub/gone.png, scanned; g/sub is where the `--out` mirror
    goes too (a.png's mirrored caption is g/sub/a.txt, beside no picture a.png)."""
    g = tmp_path / "g"
    picture(g / "a.png", TWO_TAGS[0])
    picture(g / "sub" / "b.png", TWO_TAGS[1])
    picture(g / "sub" / "gone.png", TWO_TAGS[2])
    return g


def test_an_out_export_over_beside_files_removes_nothing(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """Hazard (a): an `--out` export into a folder holding beside exports (g/sub) removes
    none of them, not even one left over; the next beside export removes that one only."""
    configure(tmp_path, mean_model)
    g = nested_gallery(tmp_path)
    scan(cli, "g")
    export(cli, "captions", "--beside")
    (g / "sub" / "gone.png").unlink()
    scan(cli, "g")
    beside = files_in(g / "sub")
    assert set(beside) == {"b.txt", "gone.txt"}
    err = export(cli, "captions", "--out", "g/sub")
    assert "removed" not in err, err
    assert files_in(g / "sub") == {**beside, "a.txt": "c0, c1\n"}
    err = export(cli, "captions", "--beside")
    assert files_in(g / "sub") == {"b.txt": beside["b.txt"], "a.txt": "c0, c1\n"}, err
    assert files_in(g / "sub" / "sub") == {"b.txt": beside["b.txt"]}


def test_a_beside_export_leaves_an_out_mirror_inside_a_root(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """Hazard (b): the `--out` mirror g/sub lies under the root; a beside export writing
    into g/sub removes none of the mirror's files (a.txt there is beside no picture a.png),
    only its own caption of the picture that went."""
    configure(tmp_path, mean_model)
    g = nested_gallery(tmp_path)
    scan(cli, "g")
    export(cli, "captions", "--out", "g/sub")
    mirror = {**files_in(g / "sub"), **files_in(g / "sub" / "sub")}
    assert set(mirror) == {"a.txt", "b.txt", "gone.txt"}
    export(cli, "captions", "--beside")
    (g / "sub" / "gone.png").unlink()
    scan(cli, "g")
    err = export(cli, "captions", "--beside")
    assert "removed 1 caption file" in err, err
    assert set(files_in(g / "sub")) == {"a.txt", "b.txt"}
    assert files_in(g / "sub")["a.txt"] == mirror["a.txt"]
    assert files_in(g / "sub" / "sub") == {"b.txt": mirror["b.txt"], "gone.txt": mirror["gone.txt"]}


def test_a_scan_and_an_export_meanwhile_lose_no_caption(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hazard (c): an export read the index when dup.png was alone (it writes dup.txt);
    before it removes leftovers, dup.jpg is added, scanned and exported by another
    export (dup.png.txt, dup.jpg.txt, and dup.txt removed). The first export keeps what
    the pictures on disk now name: both captions; dup.txt is gone for good."""
    configure(tmp_path, mean_model)
    cg = tmp_path / "cg"
    picture(cg / "dup.png", TWO_TAGS[0])
    picture(cg / "dup.jpg", TWO_TAGS[1], fmt="JPEG")
    scan(cli, "cg")
    export(cli, "captions", "--beside")  # dup.png.txt and dup.jpg.txt, both listed
    (cg / "dup.jpg").unlink()
    scan(cli, "cg")
    real = files._write
    raced = []

    def write_then_race(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        if not raced:
            raced.append(True)
            picture(cg / "dup.jpg", TWO_TAGS[3], fmt="JPEG", old=False)
            for argv in (["scan", "cg"], ["export", "--model", "means", "--format",
                                          "captions", "--beside"]):  # fmt: skip
                done = subprocess.run([sys.executable, "-m", "indexer", *argv], cwd=tmp_path,
                                      capture_output=True, timeout=300)  # fmt: skip
                assert done.returncode == 0, done.stderr

    monkeypatch.setattr(files, "_write", write_then_race)
    export(cli, "captions", "--beside")
    assert raced
    got = files_in(cg)
    assert set(got) == {"dup.png.txt", "dup.jpg.txt"}, got
    assert got["dup.png.txt"] == "c0, c1\n" and got["dup.jpg.txt"].startswith("c0, c2")


def test_a_caption_and_a_hydrus_file_of_one_name_stay(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """Hazard (d): Hydrus files share the captions' names for dup.* and one.* (whose
    one-tag caption and Hydrus file hold the same bytes, so both formats list them).
    With dup.jpg and one.jpg gone, neither format removes a file the other wrote: the
    captions export removes nothing, the Hydrus export its own dup.jpg.txt only."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "dup.png", TWO_TAGS[0])
    picture(g / "dup.jpg", TWO_TAGS[1], fmt="JPEG")
    picture(g / "one.png", (255, 0, 0))
    picture(g / "one.jpg", (255, 0, 0), fmt="JPEG")
    scan(cli, "g")
    export(cli, "hydrus", "--beside")
    hydrus = files_in(g)
    assert hydrus["one.png.txt"] == "c0\n"
    export(cli, "captions", "--beside", code=1)  # dup.*.txt are Hydrus's: named
    assert files_in(g) == hydrus
    (g / "dup.jpg").unlink()
    (g / "one.jpg").unlink()
    scan(cli, "g")
    err = export(cli, "captions", "--beside")
    assert "removed" not in err, err
    assert files_in(g) == {**hydrus, "dup.txt": "c0, c1\n", "one.txt": "c0\n"}
    err = export(cli, "hydrus", "--beside")
    assert "removed 1 Hydrus sidecar" in err, err
    del hydrus["dup.jpg.txt"]
    assert files_in(g) == {**hydrus, "dup.txt": "c0, c1\n", "one.txt": "c0\n"}


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).hexdigest().encode()


def test_a_manifest_of_an_older_dtindex_is_still_honoured(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """Lines without a format (hash and name, or a name alone) are read as before: such a
    file is replaced as dtindex's, and never removed as left over; a line with a format
    for a picture gone is."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "a.png", TWO_TAGS[0])
    picture(g / "b.png", TWO_TAGS[1])
    scan(cli, "g")
    (g / "a.txt").write_text("old tags\n")  # a's, listed by hash: replaced
    (g / "b.txt").write_text("older tags\n")  # b's, listed by name: replaced
    (g / "x.txt").write_text("x's tags\n")  # x.png went: listed by hash, stays
    (g / "y.txt").write_text("y's tags\n")  # y.png went: listed by name, stays
    (g / "z.txt").write_text("z's tags\n")  # z.png went: listed with its format, goes
    (g / ".dtindex-sidecars").write_bytes(
        sha("old tags\n") + b"\ta.txt\nb.txt\n" + sha("x's tags\n") + b"\tx.txt\ny.txt\n"
        + sha("z's tags\n") + b"\tcaptions\tbeside\tz.txt\n"
    )  # fmt: skip
    err = export(cli, "captions", "--beside")
    assert "wrote 2 caption files" in err and "removed 1 caption file" in err, err
    assert files_in(g) == {
        "a.txt": "c0, c1\n",
        "b.txt": "c1, c2\n",
        "x.txt": "x's tags\n",
        "y.txt": "y's tags\n",
    }
    listed = (g / ".dtindex-sidecars").read_bytes()
    assert sha("c0, c1\n") + b"\tcaptions\tbeside\ta.txt\n" in listed
    assert "wrote 0 caption files (2 already up to date)" in export(cli, "captions", "--beside")


def test_an_older_dtindex_reads_a_line_with_a_format_as_naming_no_file(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """An older dtindex reads a manifest line as a hash, a tab and a name: a line with a
    format then names `captions<TAB>beside<TAB>a.txt`, no file there, so that dtindex
    takes a.txt for the user's (neither replaces nor removes it)."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "a.png", TWO_TAGS[0])
    scan(cli, "g")
    export(cli, "captions", "--beside")
    older = re.compile(rb"([0-9a-f]{64})\t(.*)", re.DOTALL)  # its reading of a line
    lines = (g / ".dtindex-sidecars").read_bytes().splitlines()
    names = {older.fullmatch(line)[2] for line in lines}  # type: ignore[index]
    assert names == {b"captions\tbeside\ta.txt"}, names


def same_colour_gallery(tmp_path: Path) -> Path:
    """g/a.png and g/b.png of one colour (one caption), g/c.png another."""
    g = tmp_path / "g"
    picture(g / "a.png", TWO_TAGS[0])
    picture(g / "b.png", TWO_TAGS[0])
    picture(g / "c.png", TWO_TAGS[1])
    return g


def test_a_file_a_kept_caption_links_to_stays(cli, tmp_path: Path, mean_model: Path) -> None:
    """A deduplicating tool (`rdfind -makesymlinks`) made a.txt a link to b.txt, of the
    same bytes. With b.png gone, b.txt is the file a.png's caption reads through: it
    stays (a leftover is better than a dangling caption)."""
    configure(tmp_path, mean_model)
    g = same_colour_gallery(tmp_path)
    scan(cli, "g")
    export(cli, "captions", "--beside")
    (g / "a.txt").unlink()
    (g / "a.txt").symlink_to("b.txt")
    (g / "b.png").unlink()
    scan(cli, "g")
    err = export(cli, "captions", "--beside")
    assert "removed" not in err, err
    assert (g / "a.txt").read_text() == "c0, c1\n"


def test_a_file_a_kept_caption_in_another_folder_links_to_stays(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """`jdupes -r -l` links identical captions across the tree: g/b/q.txt is a link to
    g/a/p.txt. p.png renamed, p.txt is a leftover by its own folder, but q.txt, kept,
    reads through it: it stays (found in review; it went, exit 0, and the next export
    made it again through the link, back and forth)."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "a" / "p.png", (200, 120, 40))
    picture(g / "b" / "q.png", (200, 120, 40))
    scan(cli, "g")
    export(cli, "captions", "--beside")
    (g / "b" / "q.txt").unlink()
    (g / "b" / "q.txt").symlink_to(g / "a" / "p.txt")
    (g / "a" / "p.png").rename(g / "a" / "r.png")
    scan(cli, "./g/a/../")
    err = export(cli, "captions", "--beside")
    assert (g / "b" / "q.txt").exists(), err
    assert (g / "b" / "q.txt").read_text() == (g / "a" / "r.txt").read_text(), err


def test_a_file_a_link_in_the_folder_points_to_is_not_discarded(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """The user's link x.txt points to b.txt; b.png gets no tag any more (its caption
    would go): b.txt stays, so x.txt does not dangle."""
    configure(tmp_path, mean_model)
    g = same_colour_gallery(tmp_path)
    scan(cli, "g")
    export(cli, "captions", "--beside")
    (g / "x.txt").symlink_to("b.txt")
    (g / "b.png").unlink()
    picture(g / "b.png", (0, 0, 0), old=False)  # no tag passes
    scan(cli, "g")
    export(cli, "captions", "--beside")
    assert (g / "x.txt").read_text() == "c0, c1\n"


def test_a_file_that_is_a_kept_caption_under_another_name_stays(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """Photo.png renamed photo.png on a file system that folds case: photo.txt is
    Photo.txt, found up to date, and Photo.txt must not then be removed (it is the same
    file). A hard link named in the other case stands in for the folding here."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "Photo.png", TWO_TAGS[0])
    picture(g / "other.png", TWO_TAGS[1])
    scan(cli, "g")
    export(cli, "captions", "--beside")
    (g / "Photo.png").rename(g / "photo.png")
    (g / "photo.txt").hardlink_to(g / "Photo.txt")
    scan(cli, "g")
    err = export(cli, "captions", "--beside")
    assert "removed" not in err, err
    assert (g / "Photo.txt").read_text() == "c0, c1\n"
    assert (g / "photo.txt").read_text() == "c0, c1\n"


def locks_waited_on(pid: int) -> bool:
    """Whether process `pid` waits for a lock (flock), by /proc/locks."""
    return any(
        "->" in line and str(pid) in line.split()
        for line in Path("/proc/locks").read_text().splitlines()
    )


def test_a_file_found_up_to_date_meanwhile_is_not_removed(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hydrus export finds one.png.txt (one.png's caption beside one.jpg, the same
    bytes) up to date while a captions export, with one.jpg gone, has read the manifest
    under its lock to remove it as left over: the Hydrus export's line is written under
    that lock, so the file is left, or written again; both exit 0 and it is there."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "one.png", (255, 0, 0))
    picture(g / "one.jpg", (255, 0, 0), fmt="JPEG")
    scan(cli, "g")
    export(cli, "captions", "--beside")  # one.png.txt, one.jpg.txt: "c0\n"
    (g / "one.jpg").unlink()
    scan(cli, "g")
    real = ownership.Ownership.left_over
    others: list[subprocess.Popen[bytes]] = []

    def read_then_race(self: ownership.Ownership, folder: bytes):  # type: ignore[no-untyped-def]
        judge = real(self, folder)
        if not others:
            argv = ["export", "--model", "means", "--format", "hydrus", "--beside"]
            other = subprocess.Popen([sys.executable, "-m", "indexer", *argv], cwd=tmp_path,
                                     stderr=subprocess.PIPE)  # fmt: skip
            others.append(other)
            deadline = time.monotonic() + 120
            while other.poll() is None and not locks_waited_on(other.pid):
                assert time.monotonic() < deadline, "the Hydrus export neither ended nor waited"
                with contextlib.suppress(subprocess.TimeoutExpired):
                    other.wait(0.01)  # wakes at once if it ends; else looks at its locks again
        return judge

    monkeypatch.setattr(ownership.Ownership, "left_over", read_then_race)
    export(cli, "captions", "--beside")
    _, err = others[0].communicate(timeout=300)
    assert others[0].returncode == 0, err
    assert (g / "one.png.txt").read_text() == "c0\n", err


def test_a_beside_export_and_an_out_mirror_do_not_replace_each_others_file(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    """g/sub/a.txt is g/sub/a.png's caption and the `--out g/sub` mirror's of g/a.png:
    each export names the other's file and exits 1, leaving it; neither discards it."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "a.png", TWO_TAGS[0])
    picture(g / "sub" / "a.png", TWO_TAGS[1])
    scan(cli, "g")
    export(cli, "captions", "--out", "g/sub")
    assert (g / "sub" / "a.txt").read_text() == "c0, c1\n"
    err = export(cli, "captions", "--beside", code=1)
    said = f"{g / 'sub' / 'a.txt'}: dtindex wrote it as a caption file under --out DIR"
    assert said in err, err
    assert (g / "sub" / "a.txt").read_text() == "c0, c1\n"
    export(cli, "captions", "--beside", "--replace-existing")
    assert (g / "sub" / "a.txt").read_text() == "c1, c2\n"
    err = export(cli, "captions", "--out", "g/sub", code=1)
    assert f"{g / 'sub' / 'a.txt'}: dtindex wrote it as a caption file beside" in err, err
    assert (g / "sub" / "a.txt").read_text() == "c1, c2\n"
    (g / "a.png").unlink()
    picture(g / "a.png", (0, 0, 0), old=False)  # the mirror's a.txt would be discarded
    scan(cli, "g")
    export(cli, "captions", "--out", "g/sub")
    assert (g / "sub" / "a.txt").read_text() == "c1, c2\n"


@pytest.mark.parametrize(
    ("other", "settings"),
    [("a.psd", ""), ("a.gif", '[scan]\nextensions = ["png"]\n')],
    ids=["not-a-picture-by-content", "an-extension-not-configured"],
)
def test_files_the_scanner_never_indexes_are_no_pictures_to_the_listing(
    cli, tmp_path: Path, mean_model: Path, other: str, settings: str
) -> None:
    """a.jpg gave a.png the caption a.png.txt; it became a.psd (no picture the decoders
    read), or a.gif where the config scans PNGs only. The scanner indexes a.png alone, so
    a.png's caption is a.txt and a.png.txt is left over: it goes."""
    configure(tmp_path, mean_model)
    g = tmp_path / "g"
    picture(g / "a.png", TWO_TAGS[0])
    picture(g / "a.jpg", TWO_TAGS[1], fmt="JPEG")
    scan(cli, "g")
    export(cli, "captions", "--beside")
    assert set(files_in(g)) == {"a.png.txt", "a.jpg.txt"}
    (g / "a.jpg").unlink()
    if other.endswith(".psd"):
        (g / other).write_bytes(b"8BPS" + bytes(60))
    else:
        picture(g / other, TWO_TAGS[2], fmt="GIF")
    with (tmp_path / "deeptagger.toml").open("a") as config:
        config.write(settings)
    scan(cli, "g")
    err = export(cli, "captions", "--beside")
    assert files_in(g) == {"a.txt": "c0, c1\n"}, err
