"""What a second new-user trial (2026-12-07) found confusing, each through the CLI: a
model that tagged a picture but gave it no tag above the threshold, a failure list cut
short without saying so, a path the index cannot hold explained as "run scan", and a
mistyped root taken for an unmounted disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import BOTH, picture


def test_show_names_a_model_that_tagged_the_picture_with_nothing_above_the_threshold(
    cli, tmp_path: Path
) -> None:
    picture(tmp_path / "g" / "black.png", (0, 0, 0))
    assert cli("scan", "g")[0] == 0
    code, out, err = cli("show", "g/../g/black.png", "-t", "1")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert lines[-2].startswith("palette (version ") and lines[-2].endswith("):"), lines
    assert lines[-1] == "  no tag scored above 1 (-t sets the threshold)", lines
    code, out, _ = cli("show", "g/black.png", "-t", "0.01")
    assert "no tag scored" not in out.decode() and "palette (version " in out.decode()


def test_status_says_when_more_failures_than_it_lists(cli, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / "g").mkdir(exist_ok=True)
        (tmp_path / "g" / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
    assert cli("scan", "g")[0] == 0
    _code, out, _ = cli("status", "--failures", "2")
    lines = out.decode().splitlines()
    assert sum(line.startswith("failed: ") for line in lines) == 2
    assert lines[-1] == "more failures than the 2 listed: --failures N lists more"
    assert json.loads(cli("status", "--json", "--failures", "2")[1])["more_failures"] is True
    _, out, _ = cli("status", "--failures", "3")
    assert "more failures" not in out.decode()
    assert json.loads(cli("status", "--json")[1])["more_failures"] is False
    _, out, _ = cli("status")
    assert "3 pictures failed with a configured model: palette 3" in out.decode()


def test_status_says_no_picture_failed_in_words_that_do_not_read_as_all_done(
    cli, tmp_path: Path
) -> None:
    picture(tmp_path / "g" / "red.png")
    assert cli("scan", "g")[0] == 0
    out = cli("status")[1].decode()
    assert "no picture failed with a configured model (`dtindex models`" in out
    assert "have no result" not in out


def test_show_says_why_a_path_outside_the_roots_or_through_a_linked_folder_is_not_indexed(
    cli, tmp_path: Path
) -> None:
    picture(tmp_path / "g" / "real" / "red.png")
    picture(tmp_path / "elsewhere" / "blue.png")
    os.symlink(tmp_path / "g" / "real", tmp_path / "g" / "linked")
    assert cli("scan", "g")[0] == 0
    code, out, err = cli("show", "elsewhere/../elsewhere/blue.png")
    assert (code, out) == (1, b"") and "not under an indexed root" in err, err
    assert "run dtindex scan" not in err
    code, out, err = cli("show", "g/linked/red.png")
    assert (code, out) == (1, b""), err
    assert "g/linked, a symbolic link to a folder, which scans do not follow" in err, err
    assert f"({tmp_path / 'g' / 'real' / 'red.png'})" in err
    picture(tmp_path / "g" / "new.png")  # written a moment ago, not scanned yet
    code, _, err = cli("show", "g/new.png")
    assert code == 1 and "g/new.png: not in the index (run dtindex scan)" in err, err


def test_a_mistyped_root_is_no_such_folder_and_a_vanished_one_is_kept(cli, tmp_path: Path) -> None:
    code, out, err = cli("scan", "galery")
    assert (code, out) == (1, b"") and "galery: no such folder" in err, err
    assert "unmounted" not in err
    picture(tmp_path / "g" / "red.png")
    assert cli("scan", "g")[0] == 0
    (tmp_path / "g").rename(tmp_path / "away")
    code, _, err = cli("scan", "g")
    assert code == 1 and "g: root not found (unmounted?); the index holds 1 file" in err, err


@BOTH
def test_status_counts_the_files_under_each_of_nested_roots(cli, tmp_path: Path) -> None:
    """The inner root was scanned after the outer one had found its files: it still
    holds them (it showed 0 files), each file counted once, under the innermost root (as
    `forget` keeps them); a sibling with a longer name is not inside it."""
    picture(tmp_path / "g" / "a.png")
    picture(tmp_path / "g" / "inner" / "b.png", (0, 0, 255))
    picture(tmp_path / "g" / "inner2" / "c.png", (0, 255, 0))
    assert cli("scan", "g")[0] == 0
    assert cli("scan", "g/../g/inner")[0] == 0
    record = json.loads(cli("status", "--json")[1])
    counted = {Path(root["path"]).name: root["files"] for root in record["roots"]}
    assert counted == {"g": 2, "inner": 1}, record["roots"]
    assert f"root: {tmp_path / 'g' / 'inner'} (1 file, scanned " in cli("status")[1].decode()


def test_models_and_status_name_the_config_they_read(cli, tmp_path: Path) -> None:
    """A ./deeptagger.toml takes precedence over the user's own: the listings say which
    file was read, or that none was."""
    code, out, _ = cli("models")
    assert out.decode().splitlines()[0].startswith("config: none found"), out
    Path("deeptagger.toml").write_text("")
    picture(tmp_path / "g" / "red.png")
    assert cli("scan", "g")[0] == 0
    for command in (["models"], ["status"]):
        code, out, err = cli(*command)
        assert code == 0 and f"config: {tmp_path / 'deeptagger.toml'}\n" in out.decode(), err
    assert json.loads(cli("status", "--json")[1])["config"] == str(tmp_path / "deeptagger.toml")


def test_search_for_a_rating_with_a_model_that_has_none_says_so(cli, tmp_path: Path) -> None:
    picture(tmp_path / "g" / "red.png")
    assert cli("scan", "g")[0] == 0
    code, out, err = cli("search", "rating:general")
    assert (code, out) == (1, b""), err
    assert "model 'palette' has no ratings (rating:general)" in err, err


def test_show_takes_several_pictures_and_names_those_it_cannot_show(cli, tmp_path: Path) -> None:
    picture(tmp_path / "g" / "red.png")
    picture(tmp_path / "g" / "blue.png", (0, 0, 255))
    assert cli("scan", "g")[0] == 0
    one = [cli("show", f"g/{name}.png")[1].decode() for name in ("red", "blue")]
    code, out, err = cli("show", "g/red.png", "g/../g/nope.png", "g/blue.png")
    assert code == 1 and out.decode() == one[0] + "\n" + one[1], err
    assert "dtindex: g/../g/nope.png: no such file" in err, err
    code, out, err = cli("show", "g/red.png", "g/blue.png")
    assert (code, out.decode()) == (0, one[0] + "\n" + one[1]), err
