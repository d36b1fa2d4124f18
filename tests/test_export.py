"""Exports people use: categories and ratings, MCut, captions, csv, changed-since, search, show;
the edits (--replace, --exclude) alike in every format, and names that are not UTF-8 or
hold a line break in what other programs read."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest
from conftest import BOTH, picture, write_model

pytestmark = BOTH


@pytest.fixture
def wd_like(tmp_path: Path, cli) -> Path:
    """A probe model whose tags carry WD categories: ratings, general and a character."""
    folder = tmp_path / "models"
    model = write_model(folder, "wd", mean=True, settings="normalize = true\n")
    (folder / "wd.csv").write_text(
        "tag_id,name,category,count\n1,general,9,10\n2,blue_hair,0,10\n3,hatsune_miku,4,10\n"
    )
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.wd]\nonnx = "{folder / "wd.onnx"}"\ntags = "{folder / "wd.csv"}"\n'
        "normalize = true\nthreshold = 0.05\ngeneral = 0.3\ncharacter = 0.6\n"
    )
    del model
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", (10, 200, 100))  # general 0.04, blue_hair 0.78, miku 0.39
    picture(gallery / "a.jpg", (250, 20, 200), fmt="JPEG")
    picture(gallery / "sub" / "b.png", (120, 80, 250))
    code, _, err = cli("scan", str(gallery))
    assert code == 0, err
    return gallery


def lines(cli, *args: str) -> list[list[str]]:
    code, out, err = cli("export", "--model", "wd", *args)
    assert code == 0, err
    return [line.split("\t") for line in out.decode().splitlines()]


def test_category_thresholds_and_best_rating(cli, wd_like: Path) -> None:
    rows = lines(cli, "--id", "path")
    a = {tag for path, tag, _ in rows if path.endswith("a.png")}
    assert a == {"general", "blue_hair"}  # miku 0.39 < 0.6; rating kept though 0.04
    rows = lines(cli, "--id", "path", "--character", "0.3")
    assert "hatsune_miku" in {tag for path, tag, _ in rows if path.endswith("a.png")}
    mcut = lines(cli, "--id", "path", "--mcut")
    assert {tag for path, tag, _ in mcut if path.endswith("a.png")} >= {"general"}


def test_captions_beside_and_mirrored(cli, wd_like: Path, tmp_path: Path) -> None:
    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside",
                       "--replace", "blue_hair=aqua_hair", "--exclude", "general")  # fmt: skip
    assert code == 0, err
    assert (wd_like / "a.png.txt").read_text() == "aqua hair\n"  # shares the stem with a.jpg
    assert (wd_like / "a.jpg.txt").exists() and not (wd_like / "a.txt").exists()
    assert (wd_like / "sub" / "b.txt").exists()
    out = tmp_path / "captions"
    code, _, _ = cli("export", "--model", "wd", "--format", "captions", "--out", str(out),
                     "--limit", "1")  # fmt: skip
    assert code == 0
    assert (out / "sub" / "b.txt").read_text().count(",") == 0
    text = (out / "a.png.txt").read_text().strip()
    assert text in ("blue hair", "general")


def test_csv_and_jsonl(cli, wd_like: Path) -> None:
    code, out, _ = cli("export", "--model", "wd", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out.decode())))
    assert rows[0] == ["sha1", "tag", "weight", "category"]
    assert {"rating", "general"} <= {r[3] for r in rows[1:]}
    code, out, _ = cli("export", "--model", "wd", "--format", "jsonl")
    assert code == 0
    record = json.loads(out.splitlines()[0])
    assert record["categories"]["general"] == "rating"


def test_changed_since(cli, wd_like: Path) -> None:
    assert len(lines(cli, "--changed-since", "2000-01-01T00:00:00")) == len(lines(cli))
    future = str(time.time() + 3600)
    assert lines(cli, "--changed-since", future) == []
    code, _, err = cli("export", "--model", "wd", "--changed-since", "yesterday")
    assert code == 1 and "ISO 8601" in err


def test_search_and_show(cli, wd_like: Path) -> None:
    code, out, _ = cli("search", "blue_hair", "--general", "0.5")
    assert out.decode().splitlines() == [str(wd_like / "a.png")]
    code, out, _ = cli("search", "blue_hair")  # general = 0.3 in the model's table
    assert out.decode().splitlines() == [str(wd_like / "a.png"), str(wd_like / "sub" / "b.png")]
    code, out, _ = cli("search", "rating:general -blue_hair", "--general", "0.5")
    assert out.decode().splitlines() == [str(wd_like / "a.jpg"), str(wd_like / "sub" / "b.png")]
    code, out, _ = cli("search", "--general", "0.5", "--", "-blue_hair")
    assert out.decode().splitlines() == [str(wd_like / "a.jpg"), str(wd_like / "sub" / "b.png")]
    code, out, _ = cli("search", "blue_hair hatsune_miku", "--any", "--general", "0.7",
                       "--character", "0.7")  # fmt: skip
    assert set(out.decode().splitlines()) == {str(wd_like / "a.png"), str(wd_like / "a.jpg"),
                                              str(wd_like / "sub" / "b.png")}  # fmt: skip
    code, out, _ = cli("show", str(wd_like / "a.png"))
    text = out.decode()
    assert code == 0 and "wd (version" in text and "blue_hair\t0.78" in text and "[general]" in text
    code, _, err = cli("show", os.devnull)
    assert code == 1 and "not under an indexed root" in err


def test_hydrus_sidecars_put_tags_in_namespaces(cli, wd_like: Path) -> None:
    code, _, err = cli("export", "--model", "wd", "--format", "hydrus", "--beside",
                       "--character", "0.3", "--replace", "blue_hair=re:zero")  # fmt: skip
    assert code == 0, err
    lines = (wd_like / "a.png.txt").read_text().splitlines()  # by score: 0.78, 0.39, 0.04
    assert lines == [":re:zero", "character:hatsune miku", "rating:general"]
    assert (wd_like / "sub" / "b.png.txt").exists() and not (wd_like / "sub" / "b.txt").exists()


def test_the_rating_is_exported_as_a_rating_in_every_file_format(cli, wd_like: Path) -> None:
    """A bare `general` reads as a subject in a photo manager: XMP files the rating under
    a `rating` level (and `rating:general` in the flat dc:subject), captions and Hydrus
    write `rating:general`. The best rating passes any `-t`, but not a rating threshold
    asked for by name."""
    from test_xmp import HIERARCHY, SUBJECT, TAGS_LIST, read_xmp

    code, _, err = cli("export", "--model", "wd", "--format", "xmp", "--beside", "-t", "0.99")
    assert code == 0, err
    sidecar = read_xmp(wd_like / "a.png.xmp")  # blue_hair 0.78 > general's 0.3; rating 0.04
    assert sidecar[SUBJECT] == ["blue_hair", "rating:general"]
    assert sidecar[TAGS_LIST] == ["blue_hair", "rating/general"]
    assert sidecar[HIERARCHY] == ["blue_hair", "rating|general"]
    code, _, err = cli("export", "--model", "wd", "--format", "xmp", "--out", "x",
                       "--xmp-prefix", "dtindex/wd")  # fmt: skip
    assert code == 0, err
    sidecar = read_xmp(Path("x") / "a.png.xmp")
    assert sidecar[TAGS_LIST] == ["dtindex/wd/blue_hair", "dtindex/wd/rating/general"]
    assert sidecar[HIERARCHY] == ["dtindex|wd|blue_hair", "dtindex|wd|rating|general"]
    assert sidecar[SUBJECT] == ["blue_hair", "rating:general"]

    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside")
    assert code == 0, err
    assert (wd_like / "a.png.txt").read_text() == "blue hair, rating:general\n"
    code, _, err = cli("export", "--model", "wd", "--format", "xmp", "--beside",
                       "--category", "rating=0.5")  # fmt: skip
    assert code == 0, err
    sidecar = read_xmp(wd_like / "a.png.xmp")  # the old rating keywords went with it
    assert (sidecar[SUBJECT], sidecar[TAGS_LIST]) == (["blue_hair"], ["blue_hair"])


def test_files_dtindex_wrote_go_when_no_tag_passes_and_the_users_stay(cli, wd_like: Path) -> None:
    """A caption or Hydrus file would otherwise keep tags its picture no longer has."""
    nothing = ("--exclude", "general", "--general", "0.99", "--character", "0.99")
    where = {"captions": ("--beside",), "hydrus": ("--out", "h")}
    for fmt, place in where.items():
        code, _, err = cli("export", "--model", "wd", "--format", fmt, *place)
        assert code == 0, err
    corrected = wd_like / "sub" / "b.txt"  # a caption the user corrected: theirs now
    corrected.write_text("a purple picture\n")
    for fmt, place in where.items():
        code, _, err = cli("export", "--model", "wd", "--format", fmt, *place, *nothing)
        assert code == 0, err
        removed = "3 Hydrus sidecars" if fmt == "hydrus" else "2 caption files"
        assert f"removed {removed} that dtindex wrote: no tag passes any more" in err
    assert corrected.read_text() == "a purple picture\n"
    left = {p.relative_to(wd_like).as_posix() for p in wd_like.rglob("*") if p.is_file()}
    assert left == {"a.png", "a.jpg", "sub/b.png", "sub/b.txt", ".dtindex-sidecars",
                    "sub/.dtindex-sidecars"}  # fmt: skip
    assert {p.name for p in Path("h").rglob("*") if p.is_file()} == {".dtindex-sidecars"}


def test_a_caption_run_counts_the_pictures_that_got_no_file(cli, wd_like: Path) -> None:
    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside",
                       "--exclude", "general,hatsune_miku", "--general", "0.7")  # fmt: skip
    assert code == 0, err
    assert (wd_like / "a.png.txt").read_text() == "blue hair\n"  # 0.78; the others lower
    assert not (wd_like / "a.jpg.txt").exists() and not (wd_like / "sub" / "b.txt").exists()
    assert "wrote 1 caption file" in err
    assert "2 pictures got no caption file: no tag passed the threshold" in err


def test_options_that_do_not_apply_are_refused(cli, wd_like: Path, tmp_path: Path) -> None:
    refused = [
        (["--out", "x"], "--out applies to --format captions or xmp or hydrus, not tsv"),
        (["--beside", "--format", "csv"], "--beside applies to --format captions or xmp"),
        (["--format", "captions", "--out", "x", "--beside"], "exclude each other"),
        (["--format", "xmp"], "--format xmp needs --out DIR or --beside"),
        (["--format", "jsonl", "--id", "sha1"], "--id applies to --format tsv or csv, not jsonl"),
        (["--format", "hydrus", "--beside", "--id", "path"], "--id applies to --format tsv"),
        (["--format", "hydrus", "--beside", "--xmp-prefix", "a"], "--xmp-prefix applies to"),
        (["--format", "xmp", "--beside", "--xmp-prefix", "a|b"], "without '|'"),
        (["--format", "xmp", "--beside", "--xmp-prefix", "a//b"], "names joined by '/'"),
    ]
    for args, message in refused:
        code, out, err = cli("export", "--model", "wd", *args)
        assert (code, out) == (1, b"") and message in err, (args, err)
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".txt", ".xmp")]
    assert not (tmp_path / "x").exists()

    means = write_model(tmp_path / "models", "means", mean=True, settings="normalize = true\n")
    with (tmp_path / "deeptagger.toml").open("a") as config:
        config.write(f'[models.means]\nmodel = "{means}"\n')
    code, _, err = cli("scan", str(wd_like))
    assert code == 0, err
    code, out, err = cli("export", "--model", "means", "--general", "0.3")
    assert (code, out) == (1, b"")
    assert "--general applies to tag lists with categories; model 'means' has no categories" in err
    code, _, err = cli("export", "--model", "means", "--character", "0.3", "--format", "csv")
    assert code == 1 and "--character applies to tag lists with categories" in err
    code, _, err = cli("export", "--model", "wd", "--category", "year=0.5")
    assert code == 1 and "model 'wd' has no year tags (character, general, rating)" in err
    assert lines(cli, "--general", "0.5", "--category", "character=0.5")  # wd has both


def test_captions_never_replace_a_file_of_the_users(cli, wd_like: Path) -> None:
    """sub/b.png's caption is sub/b.txt: the user's own notes by that name stay, the
    export says why and exits 1; a file dtindex wrote and the user then changed is the
    user's too, and --replace-existing replaces such files when asked."""
    notes = wd_like / "sub" / "b.txt"
    notes.write_text("my own notes\n")
    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside")
    assert code == 1 and "a file dtindex did not write is there" in err, err
    assert notes.read_text() == "my own notes\n"
    caption = wd_like / "a.png.txt"
    assert caption.exists()
    caption.write_text("stale\n")  # a file dtindex wrote, changed since: the user's now
    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside")
    assert code == 1 and caption.read_text() == "stale\n" and notes.read_text() == "my own notes\n"
    assert "a.png.txt: changed since dtindex wrote it" in err, err
    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside",
                       "--replace-existing")  # fmt: skip
    assert code == 0, err
    assert notes.read_text() != "my own notes\n" and caption.read_text() != "stale\n"
    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside")
    assert code == 0, err  # now dtindex's own


def test_a_tag_replaced_onto_one_the_picture_has_is_one_tag_in_every_format(
    cli, wd_like: Path
) -> None:
    """a.png has blue_hair 0.78 and hatsune_miku 0.39 (--character 0.3): renaming the one
    into the other merges them, at the higher weight, whatever the format."""
    from test_xmp import SUBJECT, TAGS_LIST, read_xmp

    merge = ("--character", "0.3", "--replace", "blue_hair=hatsune_miku")
    rows = [r for r in lines(cli, "--id", "path", *merge) if r[0].endswith("a.png")]
    assert sorted(rows) == [[str(wd_like / "a.png"), "general", "0.04"],
                            [str(wd_like / "a.png"), "hatsune_miku", "0.78"]]  # fmt: skip
    limited = [r[1] for r in lines(cli, "--id", "path", *merge, "--limit", "2")
               if r[0].endswith("a.png")]  # fmt: skip
    assert sorted(limited) == ["general", "hatsune_miku"]  # --limit counts distinct tags

    code, out, err = cli("export", "--model", "wd", "--format", "csv", "--id", "path", *merge)
    assert code == 0, err
    table = [r for r in csv.reader(io.StringIO(out.decode())) if r[0].endswith("a.png")]
    assert sorted(r[1] for r in table) == ["general", "hatsune_miku"]
    assert next(float(r[2]) for r in table if r[1] == "hatsune_miku") > 0.7
    code, out, err = cli("export", "--model", "wd", "--format", "jsonl", *merge)
    assert code == 0, err
    record = next(json.loads(line) for line in out.splitlines()
                  if str(wd_like / "a.png") in json.loads(line)["paths"])  # fmt: skip
    assert sorted(record["tags"]) == ["general", "hatsune_miku"]
    assert record["tags"]["hatsune_miku"] > 0.7

    code, _, err = cli("export", "--model", "wd", "--format", "captions", "--beside", *merge)
    assert code == 0, err
    assert (wd_like / "a.png.txt").read_text() == "hatsune miku, rating:general\n"
    code, _, err = cli("export", "--model", "wd", "--format", "hydrus", "--out", "h", *merge)
    assert code == 0, err
    assert Path("h/a.png.txt").read_text() == "hatsune miku\nrating:general\n"  # blue's kind
    code, _, err = cli("export", "--model", "wd", "--format", "xmp", "--beside", *merge)
    assert code == 0, err
    sidecar = read_xmp(wd_like / "a.png.xmp")
    assert sidecar[SUBJECT] == ["hatsune_miku", "rating:general"]
    assert sidecar[TAGS_LIST] == ["hatsune_miku", "rating/general"]


def test_unknown_tags_to_exclude_or_replace_are_refused_before_anything_is_written(
    cli, wd_like: Path
) -> None:
    refused = [
        (["--exclude", "blue_hiar"], "--exclude: model 'wd' has no tag 'blue_hiar'; did you "
                                     "mean blue_hair?"),
        (["--exclude", "general,hatsune_mku"], "no tag 'hatsune_mku'; did you mean hatsune_miku"),
        (["--replace", "blue hair=aqua"], "--replace: model 'wd' has no tag 'blue hair'; did "
                                          "you mean blue_hair?"),
        (["--replace", "blue_hair=aqua", "--format", "captions", "--beside", "--exclude",
          "sensitive"], "no tag 'sensitive'"),  # a rating the list does not have
        (["--replace", "blue_hair=aqua\thair"], "a tag cannot hold a tab or line break"),
        (["--replace", "blue_hair=aqua\nhair"], "a tag cannot hold a tab or line break"),
        (["--replace", "blue_hair="], "must be OLD=NEW"),
        (["--replace", "blue_hair=\udcff"], "the new tag is not UTF-8 text"),  # argv's \xff
    ]  # fmt: skip
    for args, message in refused:
        code, out, err = cli("export", "--model", "wd", *args)
        assert (code, out) == (1, b"") and message in err, (args, err)
    assert not [p for p in wd_like.rglob("*") if p.suffix == ".txt"]
    # A rating is a tag of the model like any other.
    rows = lines(cli, "--exclude", "general", "--replace", "hatsune_miku=miku", "-t", "0.3")
    assert {tag for _, tag, _ in rows} == {"blue_hair", "miku"}


def test_jsonl_is_utf8_and_gives_back_a_name_that_is_not(cli, wd_like: Path) -> None:
    """JSON must be UTF-8: a byte that is not is written as Python's surrogate escape
    (`\\udcff`), which `os.fsencode(json.loads(...))` turns back into the file's name."""
    name = os.fsencode(wd_like) + b"/\xff\xfe caf\xe9.png"
    with open(name, "wb") as handle:
        handle.write((wd_like / "a.png").read_bytes())
    code, _, err = cli("scan", str(wd_like))
    assert code == 0, err
    code, out, err = cli("export", "--model", "wd", "--format", "jsonl")
    assert code == 0, err
    text = out.decode("utf-8")  # strict: raw \xff would fail here
    assert "\\udcff\\udcfe caf\\udce9.png" in text
    paths = [os.fsencode(p) for line in text.splitlines() for p in json.loads(line)["paths"]]
    assert name in paths and os.fsencode(wd_like / "a.png") in paths
    code, out, err = cli("export", "--model", "wd", "--id", "path")
    assert code == 0 and name + b"\tblue_hair\t0.78\n" in out  # tsv: the name's own bytes


def test_search_ends_paths_with_nul_when_asked(cli, wd_like: Path, capsysbinary) -> None:
    picture(wd_like / "two\nlines.png", (10, 200, 100))
    code, _, err = cli("scan", str(wd_like))
    assert code == 0, err
    code, out, err = cli("search", "blue_hair", "--general", "0.5", "-0")
    assert code == 0, err
    assert sorted(out.split(b"\0")) == [b"", os.fsencode(wd_like / "a.png"),
                                        os.fsencode(wd_like / "two\nlines.png")]  # fmt: skip
    code, out, _ = cli("search", "blue_hair", "--general", "0.5", "--null")
    assert out.endswith(b"\0") and out.count(b"\0") == 2
    with pytest.raises(SystemExit):
        cli("search", "--help")
    assert b"one per line" in capsysbinary.readouterr().out
