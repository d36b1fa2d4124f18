"""`dtindex scan` and `export` end to end on generated galleries, real SQLite and ONNX Runtime."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from conftest import BOTH, age, export, picture, write_model

from indexer.store.engine import index_exists
from indexer.store.location import locate


def counts(cli, *args: str) -> dict[str, int]:
    code, out, err = cli("scan", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def gallery_import(out: bytes) -> list[tuple[str, str, float]]:
    """Parse export lines as `gallery tag` does: exactly three fields or the import fails."""
    rows = []
    for line in out.decode().split("\n")[:-1]:
        fields = line.split("\t")
        assert len(fields) == 3, line
        assert re.fullmatch(r"[0-9a-f]{40}", fields[0])
        rows.append((fields[0], fields[1], float(fields[2])))
    assert out.endswith(b"\n") or out == b""
    return rows


@pytest.fixture
def setup(tmp_path: Path, mean_model: Path):
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    gallery = tmp_path / "gallery"
    picture(gallery / "red.png", (255, 0, 0))
    picture(gallery / "sub" / "green.PNG", (0, 255, 0))
    picture(gallery / "blue.jpg", (0, 0, 255), fmt="JPEG")
    (gallery / "notes.txt").write_text("not a picture file")
    return gallery


@BOTH
def test_first_scan_then_unchanged_rescan(cli, setup: Path) -> None:
    first = counts(cli, str(setup))
    assert first == {
        "files": 3,
        "new": 3,
        "changed": 0,
        "moved": 0,
        "removed": 0,
        "unchanged": 0,
        "hashed": 3,
        "tagged": 3,
        "failed": 0,
        "to_retry": 0,
    }
    rows = gallery_import(export(cli))
    assert {(t, round(w, 1)) for _, t, w in rows} == {("c0", 1.0), ("c1", 1.0), ("c2", 1.0)}
    assert len({sha for sha, _, _ in rows}) == 3
    again = counts(cli, str(setup))
    assert again["unchanged"] == 3 and again["hashed"] == 0 and again["tagged"] == 0


def test_sha1_is_the_file_sha1(cli, setup: Path) -> None:
    import hashlib

    counts(cli, str(setup))
    sha = hashlib.sha1((setup / "red.png").read_bytes()).hexdigest()
    assert (sha, "c0", 1.0) in gallery_import(export(cli))


@BOTH
def test_rename_move_duplicate_edit_delete(cli, setup: Path) -> None:
    counts(cli, str(setup))
    before = export(cli)
    (setup / "red.png").rename(setup / "rouge.png")
    (setup / "elsewhere").mkdir()
    (setup / "blue.jpg").rename(setup / "elsewhere" / "blue.jpg")
    result = counts(cli, str(setup))
    # a rename changes the inode's ctime: the bytes are checked (test_moves.py), not retagged
    assert (result["moved"], result["hashed"], result["tagged"], result["removed"]) == (2, 2, 0, 0)
    assert export(cli) == before

    (setup / "copy.png").write_bytes((setup / "rouge.png").read_bytes())
    age(setup / "copy.png")
    result = counts(cli, str(setup))
    assert (result["new"], result["hashed"], result["tagged"]) == (1, 1, 0)
    assert export(cli) == before
    by_path = export(cli, "--id", "path").decode()
    assert f"{setup / 'copy.png'}\tc0\t1.00\n" in by_path
    assert f"{setup / 'rouge.png'}\tc0\t1.00\n" in by_path

    picture(setup / "rouge.png", (255, 255, 0))
    os.utime(setup / "rouge.png", ns=(1_700_000_000 * 10**9,) * 2)
    result = counts(cli, str(setup))
    assert (result["changed"], result["hashed"], result["tagged"]) == (1, 1, 1)

    (setup / "copy.png").unlink()
    (setup / "sub" / "green.PNG").unlink()
    result = counts(cli, str(setup))
    assert result["removed"] == 2 and result["files"] == 2
    tags = {(t, round(w, 2)) for _, t, w in gallery_import(export(cli))}
    assert tags == {("c0", 1.0), ("c1", 1.0), ("c2", 1.0)}  # yellow (c0, c1) and blue (c2)
    assert len(gallery_import(export(cli))) == 3


@BOTH
def test_missing_or_unmounted_root_removes_nothing(cli, setup: Path, tmp_path: Path) -> None:
    counts(cli, str(setup))
    before = export(cli)
    setup.rename(tmp_path / "away")
    code, out, err = cli("scan", str(setup))
    assert code == 1 and "root not found" in err and out == b""
    assert export(cli) == before
    setup.mkdir()  # an empty mount point
    code, _, err = cli("scan", str(setup))
    assert code == 1 and "root is empty" in err
    assert export(cli) == before
    assert counts(cli, "--allow-empty", str(setup))["removed"] == 3
    assert export(cli) == b""


def test_rescan_defaults_to_known_roots(cli, setup: Path) -> None:
    counts(cli, str(setup))
    picture(setup / "new.png", (0, 0, 0))
    assert counts(cli)["new"] == 1


@BOTH
def test_new_model_and_new_model_version(cli, setup: Path, tmp_path: Path) -> None:
    counts(cli, str(setup))
    other = write_model(tmp_path / "models", "probe", positions=[0], settings="normalize = true\n")
    config = tmp_path / "deeptagger.toml"
    config.write_text(config.read_text() + f'[models.probe]\nmodel = "{other}"\n')
    result = counts(cli, str(setup))
    assert (result["hashed"], result["tagged"]) == (0, 3)  # only the new model ran
    means_before = export(cli)

    (tmp_path / "models" / "probe.tags").write_text("first_red\n")
    assert len(gallery_import(export(cli, model="probe"))) == 1  # old version still exported
    assert "p0" in export(cli, model="probe").decode()
    result = counts(cli, "--model", "probe", str(setup))
    assert result["tagged"] == 3
    assert "first_red" in export(cli, model="probe").decode()
    assert "p0" not in export(cli, model="probe").decode()
    assert export(cli) == means_before
    code, out, _ = cli("models")
    assert code == 0 and b"probe" in out and b"3 of 3 pictures tagged" in out


@BOTH
def test_undecodable_pictures_fail_once_until_changed(cli, setup: Path) -> None:
    broken = setup / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    age(broken)
    first = counts(cli, str(setup))
    assert first["failed"] == 1 and first["tagged"] == 3
    again = counts(cli, str(setup))
    assert again["failed"] == 0 and again["hashed"] == 0
    code, out, _ = cli("status")
    assert code == 0 and b"broken.png" in out
    picture(broken, (9, 9, 9))
    os.utime(broken, ns=(1_700_000_000 * 10**9,) * 2)
    fixed = counts(cli, str(setup))
    assert (fixed["changed"], fixed["tagged"], fixed["failed"]) == (1, 1, 0)


def test_walk_rules(cli, setup: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    picture(outside / "far.png")
    (setup / "link").symlink_to(outside)
    picture(setup / ".thumbnails" / "t.png")
    config = tmp_path / "deeptagger.toml"
    config.write_text('[scan]\nexclude = [".thumbnails"]\n' + config.read_text())
    assert counts(cli, str(setup))["files"] == 3


@BOTH
def test_paths_that_are_not_utf8_round_trip(cli, setup: Path) -> None:
    name = os.fsencode(setup) + b"/caf\xe9.png"
    with open(name, "wb") as handle:
        handle.write((setup / "red.png").read_bytes())
    os.utime(name, ns=(1_600_000_000 * 10**9,) * 2)
    counts(cli, str(setup))
    assert name + b"\tc0\t1.00\n" in export(cli, "--id", "path")
    assert counts(cli, str(setup))["hashed"] == 0


def test_export_refuses_paths_with_tabs(cli, setup: Path) -> None:
    picture(setup / "tab\there.png", (0, 0, 200))
    counts(cli, str(setup))
    code, out, err = cli("export", "--model", "means", "--id", "path")
    assert code == 1 and b"tab\there" not in out and "tab or line break" in err
    assert len(gallery_import(export(cli))) == 4


@BOTH
def test_jsonl_export(cli, setup: Path) -> None:
    counts(cli, str(setup))
    records = [json.loads(line) for line in export(cli, "--format", "jsonl").splitlines()]
    assert len(records) == 3
    red = next(r for r in records if r["paths"] == [str(setup / "red.png")])
    assert red["tags"] == {"c0": 1.0}


def test_read_commands_never_create_a_database(cli, tmp_path: Path) -> None:
    code, _, err = cli("export", "--model", "means")
    assert code == 1 and "no index here yet" in err
    assert not (tmp_path / "index.sqlite").exists()


@BOTH
@pytest.mark.parametrize("command", [["prune"], ["forget", "gallery"]])
def test_prune_and_forget_never_create_a_database(cli, index_db: str, command) -> None:
    code, out, err = cli(*command)
    assert (code, out) == (1, b"") and "no index here yet; run `dtindex scan` first" in err
    assert not index_exists(locate(index_db))
    assert os.listdir(".") == []  # no index file, no -wal or -shm beside it


def test_integrity_after_scans(cli, setup: Path, tmp_path: Path) -> None:
    counts(cli, str(setup))
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_scan_and_tag_say_whether_the_model_was_kept_busy(cli, setup: Path) -> None:
    summary = re.compile(
        r"the model ran (\d+\.\d) s of (\d+\.\d) s \((\d+)%\); (\d+\.\d) s waiting for decoded"
    )
    code, _, err = cli("scan", str(setup))
    assert code == 0, err
    match = summary.search(err)
    assert match, err
    model_s, wall_s, _, waiting_s = (float(g) for g in match.groups())
    assert model_s + waiting_s <= wall_s + 0.1
    assert not summary.search(cli("scan", str(setup))[2])  # nothing tagged, nothing to say
    pictures = [str(p) for p in sorted(setup.rglob("*.*")) if p.suffix != ".txt"]
    code, _, err = cli("tag", "means", *pictures)
    assert code == 0 and summary.search(err), err
