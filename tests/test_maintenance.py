"""`dtindex forget` and `dtindex prune` end to end: real SQLite, real ONNX Runtime."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pgserver
import pytest
from conftest import BOTH, age, export, picture, write_model


def scan(cli, *args: str) -> dict[str, int]:
    code, out, err = cli("scan", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def forget(cli, *args: str) -> dict[str, int]:
    code, out, err = cli("forget", "--json", *args)
    assert code == 0, err
    assert "forgot" in err  # the report on stderr
    record = json.loads(out)
    return {key: record[key] for key in ("roots", "files", "reassigned")}  # the counts


def prune(cli, *args: str) -> dict[str, int]:
    code, out, err = cli("prune", "--json", *args)
    assert code == 0, err
    assert "pruned" in err
    return json.loads(out)


def exported_paths(cli) -> set[str]:
    lines = export(cli, "--id", "path").decode().splitlines()
    return {line.split("\t")[0] for line in lines}


def indexed_roots(cli) -> dict[str, int]:
    code, out, err = cli("status", "--json")
    assert code == 0, err
    return {root["path"]: root["files"] for root in json.loads(out)["roots"]}


def query(db: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    return pgserver.rows(db, sql, *params)


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture
def config(tmp_path: Path, mean_model: Path) -> Path:
    path = tmp_path / "deeptagger.toml"
    path.write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    return path


def gallery(folder: Path, *colours: tuple[int, int, int]) -> list[Path]:
    return [picture(folder / f"{i}.png", colour) for i, colour in enumerate(colours)]


# -- forget ---------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["g1", "./g1/", "g2/../g1", "g2/sub/../../g1"])
@BOTH
def test_forget_resolves_relative_paths(cli, config: Path, tmp_path: Path, spelling: str) -> None:
    one = gallery(tmp_path / "g1", (255, 0, 0), (0, 255, 0))
    two = gallery(tmp_path / "g2", (0, 0, 255))
    scan(cli, str(tmp_path / "g1"), str(tmp_path / "g2"))
    assert exported_paths(cli) == {str(p) for p in one + two}
    assert forget(cli, spelling) == {"roots": 1, "files": 2, "reassigned": 0}
    assert indexed_roots(cli) == {str(tmp_path / "g2"): 1}
    assert exported_paths(cli) == {str(two[0])}


@BOTH
def test_forget_from_another_folder_with_dotdot(
    cli, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery(tmp_path / "g1", (255, 0, 0))
    two = gallery(tmp_path / "g2", (0, 0, 255))
    scan(cli, str(tmp_path / "g1"), str(tmp_path / "g2"))
    monkeypatch.chdir(tmp_path / "g2")
    assert forget(cli, "../g1") == {"roots": 1, "files": 1, "reassigned": 0}
    assert exported_paths(cli) == {str(two[0])}


@BOTH
def test_forget_deleted_root_unblocks_plain_scan(cli, config: Path, tmp_path: Path) -> None:
    gallery(tmp_path / "gone", (255, 0, 0), (0, 255, 0))
    kept = gallery(tmp_path / "kept", (0, 0, 255), (255, 255, 0))
    scan(cli, str(tmp_path / "gone"), str(tmp_path / "kept"))
    shutil.rmtree(tmp_path / "gone")
    code, _, err = cli("scan")
    assert code == 1 and "root not found" in err
    assert forget(cli, str(tmp_path / "gone")) == {"roots": 1, "files": 2, "reassigned": 0}
    result = scan(cli)
    assert (result["files"], result["unchanged"], result["removed"]) == (2, 2, 0)
    assert exported_paths(cli) == {str(p) for p in kept}
    assert {line.split("\t")[0] for line in export(cli).decode().splitlines()} == {
        sha1(p) for p in kept
    }


@BOTH
def test_forget_inner_root_keeps_its_files_under_the_outer(
    cli, config: Path, tmp_path: Path
) -> None:
    outer = tmp_path / "gallery"
    pictures = gallery(outer, (255, 0, 0)) + gallery(outer / "inner", (0, 255, 0), (0, 0, 255))
    scan(cli, str(outer), str(outer / "inner"))
    assert indexed_roots(cli) == {str(outer): 1, str(outer / "inner"): 2}
    before = export(cli)
    assert forget(cli, str(outer / "inner")) == {"roots": 1, "files": 0, "reassigned": 2}
    assert indexed_roots(cli) == {str(outer): 3}
    assert export(cli) == before
    assert exported_paths(cli) == {str(p) for p in pictures}
    result = scan(cli, str(outer))
    assert (result["hashed"], result["new"], result["unchanged"]) == (0, 0, 3)


@BOTH
def test_forget_outer_root_keeps_the_inner_roots_files(cli, config: Path, tmp_path: Path) -> None:
    outer = tmp_path / "gallery"
    gallery(outer, (255, 0, 0))
    inner = gallery(outer / "inner", (0, 255, 0))
    scan(cli, str(outer), str(outer / "inner"))
    assert forget(cli, str(outer)) == {"roots": 1, "files": 1, "reassigned": 0}
    assert indexed_roots(cli) == {str(outer / "inner"): 1}
    assert exported_paths(cli) == {str(inner[0])}
    assert scan(cli)["hashed"] == 0


@BOTH
def test_forget_leaves_sibling_folders_with_a_common_prefix(
    cli, config: Path, tmp_path: Path
) -> None:
    gallery(tmp_path / "g", (255, 0, 0))
    gallery(tmp_path / "g2", (0, 255, 0))
    sibling = gallery(tmp_path / "g.old", (0, 0, 255))  # `.` sorts before `/`, `2` after
    scan(cli, *(str(tmp_path / name) for name in ("g", "g2", "g.old")))
    # /g2/0.png starts with /g but is not inside it: gone with g2, not handed to g
    assert forget(cli, str(tmp_path / "g2")) == {"roots": 1, "files": 1, "reassigned": 0}
    assert indexed_roots(cli) == {str(tmp_path / "g"): 1, str(tmp_path / "g.old"): 1}
    assert forget(cli, str(tmp_path / "g")) == {"roots": 1, "files": 1, "reassigned": 0}
    assert indexed_roots(cli) == {str(tmp_path / "g.old"): 1}
    assert exported_paths(cli) == {str(sibling[0])}
    result = scan(cli)
    assert (result["hashed"], result["unchanged"]) == (0, 1)


@BOTH
def test_forget_unknown_root_removes_nothing(cli, config: Path, tmp_path: Path) -> None:
    gallery(tmp_path / "g1", (255, 0, 0))
    gallery(tmp_path / "g2", (0, 255, 0))
    scan(cli, str(tmp_path / "g1"), str(tmp_path / "g2"))
    before = export(cli, "--id", "path")
    code, out, err = cli("forget", str(tmp_path / "g1"), str(tmp_path / "elsewhere"))
    assert code == 1 and out == b""
    assert "elsewhere" in err and str(tmp_path / "g2") in err  # names it, lists the known
    assert len(indexed_roots(cli)) == 2
    assert export(cli, "--id", "path") == before


# -- prune ----------------------------------------------------------------------------
def table_counts(db: str) -> dict[str, int]:
    names = ("contents", "taggings", "scores", "model_versions", "tags")
    return {n: int(query(db, f"SELECT COUNT(*) FROM {n}")[0][0]) for n in names}


@BOTH
def test_prune_drops_contents_no_file_shows(
    cli, config: Path, tmp_path: Path, index_db: str
) -> None:
    folder = tmp_path / "gallery"
    red, _, blue = gallery(folder, (255, 0, 0), (0, 255, 0), (0, 0, 255))
    (folder / "copy.png").write_bytes(red.read_bytes())  # a duplicate: one content, two files
    age(folder / "copy.png")
    scan(cli, str(folder))
    blue_id = query(index_db, "SELECT id FROM contents WHERE sha1 = ?", sha1(blue))[0][0]
    blue_scores = query(index_db, "SELECT COUNT(*) FROM scores WHERE content_id = ?", blue_id)
    assert blue_scores[0][0] > 0
    blue.unlink()
    red.unlink()  # its copy still shows that content
    assert scan(cli, str(folder))["removed"] == 2
    before, counted = export(cli), table_counts(index_db)
    assert counted["contents"] == 3  # a scan keeps the tags of pictures gone

    assert prune(cli) == {"contents": 1, "model_versions": 0, "scores": blue_scores[0][0]}
    assert export(cli) == before
    assert table_counts(index_db) == {
        **counted,
        "contents": 2,
        "taggings": counted["taggings"] - 1,
        "scores": counted["scores"] - blue_scores[0][0],
    }
    for table in ("scores", "taggings", "claims"):
        assert query(index_db, f"SELECT * FROM {table} WHERE content_id = ?", blue_id) == []
    assert prune(cli) == {"contents": 0, "model_versions": 0, "scores": 0}
    assert scan(cli, str(folder))["hashed"] == 0


@BOTH
def test_prune_keeps_configured_and_newest_versions(
    cli, config: Path, tmp_path: Path, index_db: str
) -> None:
    folder = tmp_path / "gallery"
    gallery(folder, (250, 10, 0), (0, 200, 40))
    base = config.read_text()
    ids = {}
    for name, setting in (("A", ""), ("B", 'channels = "bgr"\n'), ("C", 'pad = "edge"\n')):
        config.write_text(base + setting)
        assert scan(cli, str(folder))["tagged"] == 2  # each setting is a new version
        ids[name] = query(index_db, "SELECT MAX(id) FROM model_versions")[0][0]
    b_scores = query(index_db, "SELECT COUNT(*) FROM scores WHERE model_version_id = ?", ids["B"])[
        0
    ][0]
    config.write_text(base)  # back to A: A is configured, C is the newest, B is neither
    before, counted = export(cli), table_counts(index_db)

    assert prune(cli) == {"contents": 0, "model_versions": 1, "scores": b_scores}
    assert export(cli) == before
    remaining = query(index_db, "SELECT id FROM model_versions ORDER BY id")
    assert remaining == [(ids["A"],), (ids["C"],)]
    for table in ("scores", "taggings", "tags"):
        assert query(index_db, f"SELECT * FROM {table} WHERE model_version_id = ?", ids["B"]) == []
    assert table_counts(index_db) == {
        **counted,
        "model_versions": 2,
        "taggings": counted["taggings"] - 2,
        "tags": counted["tags"] - 3,
        "scores": counted["scores"] - b_scores,
    }
    assert scan(cli, str(folder))["tagged"] == 0  # A's results were kept: nothing to redo


@BOTH
def test_prune_keeps_only_the_newest_of_an_unconfigured_model(
    cli, config: Path, tmp_path: Path, index_db: str
) -> None:
    folder = tmp_path / "gallery"
    gallery(folder, (250, 10, 0))
    base = config.read_text()
    for setting in ("", 'channels = "bgr"\n'):
        config.write_text(base + setting)
        scan(cli, str(folder))
    newest = query(index_db, "SELECT MAX(id) FROM model_versions")
    before = export(cli)
    config.write_text("")  # the model is no longer described: only the newest counts
    assert prune(cli)["model_versions"] == 1
    assert query(index_db, "SELECT id FROM model_versions") == newest
    assert export(cli) == before


def test_prune_vacuum_shrinks_the_file(cli, tmp_path: Path, index_db: str) -> None:
    model = write_model(
        tmp_path / "models", "pixels", positions=range(192), settings="normalize = true\n"
    )
    (tmp_path / "deeptagger.toml").write_text(f'[models.pixels]\nmodel = "{model}"\n')
    folder = tmp_path / "gallery"
    gallery(folder, *((20 + 10 * i, 100, 200) for i in range(12)))
    scan(cli, str(folder))
    for path in folder.iterdir():
        path.unlink()
    assert scan(cli, "--allow-empty", str(folder))["removed"] == 12

    def pages() -> tuple[int, int]:
        size = query(index_db, "PRAGMA page_count")[0][0]
        return int(size), int(query(index_db, "PRAGMA freelist_count")[0][0])

    full = pages()
    assert prune(cli)["contents"] == 12
    size, free = pages()
    assert size == full[0] and free > 0  # deleted rows leave free pages in the file
    assert prune(cli, "--vacuum") == {"contents": 0, "model_versions": 0, "scores": 0}
    size, free = pages()
    assert size < full[0] and free == 0
    with closing(sqlite3.connect(tmp_path / "index.sqlite")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert export(cli, model="pixels") == b""


@BOTH
def test_prune_keeps_an_old_version_a_stopped_new_one_has_not_replaced(
    cli, config: Path, tmp_path: Path, index_db: str
) -> None:
    folder = tmp_path / "gallery"
    gallery(folder, (250, 10, 0), (0, 200, 40))
    picture(folder / "big.png", (10, 20, 250), size=(64, 64))  # 4,096 pixels
    base = config.read_text()
    scan(cli, str(folder))
    old = query(index_db, "SELECT MAX(id) FROM model_versions")[0][0]
    # A new version whose scan stops part-way: big.png is over the limit, so the old
    # version's result is still the one exported for it.
    config.write_text("max_pixels = 1000\n" + base + 'channels = "bgr"\n')
    _, _, err = cli("scan", str(folder))
    assert "big.png: picture is 64x64, over the limit" in err
    before = export(cli, "--id", "path")
    assert str(folder / "big.png") in before.decode()

    assert prune(cli)["model_versions"] == 0  # each version still prints something
    assert export(cli, "--id", "path") == before
    assert (
        query(index_db, "SELECT COUNT(*) FROM taggings WHERE model_version_id = ?", old)[0][0] == 3
    )
    config.write_text(base + 'channels = "bgr"\n')  # the limit raised: the new one catches up
    scan(cli, str(folder))
    assert prune(cli)["model_versions"] == 1
    assert query(index_db, "SELECT id FROM model_versions WHERE id = ?", old) == []
