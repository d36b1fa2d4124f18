"""What a new user trips over on the first day (issue 27), through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import picture, write_model

Cli = Callable[..., tuple[int, bytes, str]]

# Output k is input value k of the 8x8 NHWC tensor: R, G, B of the first pixel, R again.
WD_TAGS = "tag_id,name,category,count\n1,general,9,1\n2,sensitive,9,1\n3,hatsune_miku,4,1\n"
WD_TAGS += "4,smile,0,1\n"


@pytest.fixture
def wd_like(tmp_path: Path, cli: Cli) -> Path:
    """A model with two ratings, a character and a general tag, thresholds as the issue's:
    threshold 0.5, general 0.35, character 0.85; three pictures scanned."""
    folder = tmp_path / "models"
    write_model(folder, "wd", positions=(0, 1, 2, 0), settings="normalize = true\n")
    (folder / "wd.csv").write_text(WD_TAGS)
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.wd]\nonnx = "{folder / "wd.onnx"}"\ntags = "{folder / "wd.csv"}"\n'
        "normalize = true\nthreshold = 0.5\ngeneral = 0.35\ncharacter = 0.85\n"
    )
    gallery = tmp_path / "gallery"
    picture(gallery / "p1.png", (100, 200, 158))  # general .39 sensitive .78 miku .62 smile .39
    picture(gallery / "p2.png", (160, 20, 240))  # general .63 sensitive .08 miku .94 smile .63
    picture(gallery / "p3.png", (200, 230, 30))  # general .78 sensitive .90 miku .12 smile .78
    code, _, err = cli("scan", str(gallery))
    assert code == 0, err
    return gallery


def exported(cli: Cli, *options: str) -> dict[str, set[str]]:
    code, out, err = cli("export", "--model", "wd", "--id", "path", *options)
    assert code == 0, err
    by_tag: dict[str, set[str]] = {}
    for line in out.decode().splitlines():
        path, tag, _ = line.split("\t")
        by_tag.setdefault(tag, set()).add(Path(path).name)
    return by_tag


def found(cli: Cli, *argv: str) -> set[str]:
    code, out, err = cli("search", *argv)
    assert code == 0, err
    return {Path(p).name for p in out.decode().splitlines()}


def test_search_and_export_agree_on_which_pictures_have_a_tag(cli: Cli, wd_like: Path) -> None:
    """One rule: the export's thresholds (per category, the single best rating) in both;
    the same threshold options ask both for another."""
    for options in ([], ["--character", "0.5"], ["-t", "0.7", "--general", "0.7"]):
        tags = exported(cli, *options)
        assert tags["smile"] == {"p1.png", "p2.png", "p3.png"} or options
        for tag in ("general", "sensitive", "hatsune_miku", "smile"):
            assert found(cli, tag, *options) == tags.get(tag, set()), (tag, options)
        assert found(cli, "rating:general", *options) == {"p2.png"}
        assert found(cli, "smile -hatsune_miku", *options) == (
            tags["smile"] - tags.get("hatsune_miku", set())
        )
    assert found(cli, "hatsune_miku", "--character", "0.5") == {"p1.png", "p2.png"}


def test_export_without_a_model_picks_the_only_one(cli: Cli, wd_like: Path, tmp_path: Path) -> None:
    code, out, err = cli("export")
    assert code == 0, err
    assert out == cli("export", "--model", "wd")[1] and out
    means = write_model(tmp_path / "models", "means", mean=True, settings="normalize = true\n")
    with (tmp_path / "deeptagger.toml").open("a") as config:
        config.write(f'[models.means]\nmodel = "{means}"\n')
    code, _, err = cli("scan", str(wd_like))
    assert code == 0, err
    for command in (["export"], ["search", "smile"]):
        code, out, err = cli(*command)
        assert (code, out) == (1, b""), command
        assert "name a model with --model (indexed: means, wd)" in err, err


def broken_gallery(gallery: Path) -> None:
    picture(gallery / "red.png", (250, 10, 10))
    picture(gallery / "blue.png", (10, 20, 250))
    (gallery / "empty.png").write_bytes(b"")
    (gallery / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")


def test_show_says_a_picture_failed_and_why(cli: Cli, tmp_path: Path) -> None:
    broken_gallery(tmp_path / "g")
    code, _, err = cli("scan", "g")
    assert code == 0, err
    code, out, err = cli("show", "g/broken.png")
    assert code == 0, err
    text = out.decode()
    assert "failed: palette (version " in text and "not a picture Pillow can identify" in text
    assert "None" not in text
    code, out, err = cli("show", "g/empty.png")
    assert code == 0 and "empty file" in out.decode(), err
    code, out, err = cli("show", "g/../g/nope.png")
    assert (code, out) == (1, b"") and "g/../g/nope.png: no such file" in err
    assert "scan" not in err


def test_similar_of_a_broken_file_says_what_is_wrong(cli: Cli, tmp_path: Path) -> None:
    from test_similar import embedding_model

    config = str(embedding_model(tmp_path))
    broken_gallery(tmp_path / "g")
    code, _, err = cli("--config", config, "scan", "g")
    assert code == 0, err
    code, out, err = cli("--config", config, "similar", "-m", "emb", "g/red.png", "-n", "1")
    assert code == 0 and out.decode().endswith("blue.png\n"), err
    for name, reason in (
        ("broken.png", "not a picture Pillow can identify"),
        ("empty.png", "empty file"),
    ):
        code, out, err = cli("--config", config, "similar", f"g/{name}")
        assert (code, out) == (1, b"") and f"g/{name}: emb failed on it: {reason}" in err, err
        assert "scan" not in err
    code, _, err = cli("--config", config, "similar", "g/nope.png")
    assert code == 1 and "g/nope.png: no such file" in err and "scan" not in err


def test_a_db_that_is_a_folder_is_called_one(cli: Cli, tmp_path: Path) -> None:
    picture(tmp_path / "g" / "red.png")
    (tmp_path / "indexes").mkdir()
    for command in (["status"], ["scan", "g"], ["models"], ["export"]):
        code, out, err = cli(*command, "--db", "indexes/../indexes")
        assert (code, out) == (1, b""), (command, err)
        assert f"{tmp_path / 'indexes'}: a folder, not an index file" in err, (command, err)
        assert "no index here yet" not in err and "unable to open" not in err
    assert list((tmp_path / "indexes").iterdir()) == []


def test_status_counts_pictures_and_says_what_each_number_means(
    cli: Cli, tmp_path: Path, mean_model: Path
) -> None:
    """Failures count pictures, not (picture, model) pairs; a model no longer configured
    is counted apart."""
    broken_gallery(tmp_path / "g")
    (tmp_path / "g" / "copy.png").write_bytes((tmp_path / "g" / "red.png").read_bytes())
    assert cli("scan", "g")[0] == 0  # the built-in palette, as no model is configured
    Path("deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    code, _, err = cli("scan", "g")
    assert code == 0, err
    code, out, err = cli("status")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert "5 files, 4 distinct pictures (identical files are one picture)" in lines
    assert "0 files could not be read (no bytes to hash: permissions, I/O)" in lines
    assert "2 pictures failed with a configured model: means 2" in lines
    assert "not configured any more: palette failed on 2 pictures" in lines
    failed = [line for line in lines if line.startswith("failed: ")]
    assert len(failed) == 2 and all(
        "palette" in line and "(not configured)" in line for line in failed
    )
    record = json.loads(cli("status", "--json")[1])
    assert (record["files"], record["contents"], record["unreadable"]) == (5, 4, 0)
    assert record["failed"] == 2 and record["failed_by_model"] == {"means": 2}
    assert record["failed_unconfigured"] == {"palette": 2}


def test_tag_with_an_onnx_file_says_it_needs_a_model_file(cli: Cli, tmp_path: Path) -> None:
    model = write_model(tmp_path / "m", "probe", positions=[0])
    kept = model.read_bytes()
    model.unlink()  # the graph and its tags, as downloaded, with no .model beside them
    picture(tmp_path / "pic.png")
    for given in ("m/probe.onnx", "./m/../m/probe.onnx"):
        code, out, err = cli("tag", given, "pic.png")
        assert (code, out) == (2, b""), err
        assert f"{given}: an .onnx graph needs a .model file" in err, err
        assert "dtindex model add" in err and "UTF-8" not in err
    model.write_bytes(kept)
    code, out, err = cli("tag", "m/probe.model", "pic.png")  # the way the message points
    assert code == 0 and out.startswith(b"pic.png\tp0\t"), err


def test_a_graph_with_its_model_file_beside_it_is_taken_as_that_model(
    cli: Cli, tmp_path: Path
) -> None:
    """deeptagger's three files in a folder: the .onnx, or the folder, stands for the
    .model beside the graph, in `tag` and in `model add` (both used to refuse it)."""
    write_model(tmp_path / "m", "probe", positions=[0])
    picture(tmp_path / "pic.png")
    want = cli("tag", "m/probe.model", "pic.png")
    assert want[0] == 0 and want[1].startswith(b"pic.png\tp0\t"), want[2]
    assert cli("tag", "./m/../m/probe.onnx", "pic.png")[:2] == want[:2]
    config = tmp_path / "mine.toml"
    config.write_text("")
    for name, source in (("by_folder", "m"), ("by_graph", "m/probe.onnx")):
        code, _, err = cli("--config", str(config), "model", "add", name, source)
        assert code == 0 and f"added {name} (deeptagger .model" in err, err
        assert cli("--config", str(config), "tag", name, "pic.png")[:2] == want[:2]


def test_forget_json_prints_the_removed_roots_and_files(cli: Cli, tmp_path: Path) -> None:
    """As its help says: the roots and files removed, and the files now under another root."""
    picture(tmp_path / "outer" / "a.png")
    picture(tmp_path / "outer" / "inner" / "b.png", (0, 0, 255))
    picture(tmp_path / "other" / "c.png", (0, 255, 0))
    for root in ("outer", "outer/inner", "other"):
        assert cli("scan", root)[0] == 0
    code, out, err = cli("forget", "--json", "outer/inner/..", "other")
    assert code == 0, err
    record = json.loads(out)
    assert record["removed_roots"] == [str(tmp_path / "other"), str(tmp_path / "outer")]
    assert record["removed_files"] == [
        str(tmp_path / "other" / "c.png"),
        str(tmp_path / "outer" / "a.png"),
    ]
    assert record["reassigned_files"] == [str(tmp_path / "outer" / "inner" / "b.png")]
    assert (record["roots"], record["files"], record["reassigned"]) == (2, 2, 1)
