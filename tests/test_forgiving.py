"""Commands that forgive: global options after the subcommand, a typo answered with the
subcommand's own usage, and the closest known names suggested."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import picture, write_model


def usage_error(cli, capsysbinary, *args: str) -> str:
    """What argparse says (on stderr, exit 2) about a command line it refuses."""
    with pytest.raises(SystemExit) as stopped:
        cli(*args)
    assert stopped.value.code == 2
    return capsysbinary.readouterr().err.decode()


@pytest.fixture
def indexed(cli, tmp_path: Path) -> Path:
    """A gallery scanned with the palette into `elsewhere.sqlite` (not DTINDEX_DB's)."""
    gallery = tmp_path / "gallery"
    picture(gallery / "red.png", (250, 0, 0))
    picture(gallery / "grey.png", (128, 128, 128))
    code, _, err = cli("scan", "-q", str(gallery), "--db", "elsewhere.sqlite")
    assert code == 0, err
    assert err == ""  # -q after the subcommand: no summary
    return gallery


def test_global_options_work_after_the_subcommand(cli, tmp_path: Path, indexed: Path) -> None:
    assert not (tmp_path / "index.sqlite").exists()  # --db after `scan` was used
    code, out, err = cli("export", "--model", "palette", "--db", "elsewhere.sqlite")
    assert code == 0, err
    assert b"red_theme" in out
    before = cli("--db", "elsewhere.sqlite", "export", "--model", "palette")
    assert before == (code, out, err)
    code, out, err = cli("status", "-v", "--config", "deeptagger.toml", "--db", "elsewhere.sqlite")
    assert code == 1 and "deeptagger.toml: config file not found" in err  # named: must exist
    (tmp_path / "deeptagger.toml").write_text("")
    code, out, err = cli(
        "--quiet", "status", "--db", "elsewhere.sqlite", "--config", "deeptagger.toml"
    )
    assert code == 0 and b"2 files" in out
    (tmp_path / "other.toml").write_text("")
    model = write_model(tmp_path / "m", "probe", positions=[0])
    code, _, err = cli("model", "add", "probe", str(model), "--config", "other.toml")
    assert code == 0, err
    assert "[models.probe]" in (tmp_path / "other.toml").read_text()


def test_a_typo_in_an_option_shows_the_subcommands_usage(cli, capsysbinary) -> None:
    err = usage_error(cli, capsysbinary, "scan", "--alow-empty", "--retry-faild", "gallery")
    assert err.startswith("usage: dtindex scan ")
    assert "dtindex scan: error: unrecognized arguments: --alow-empty --retry-faild" in err
    assert "did you mean --allow-empty, --retry-failed?" in err
    err = usage_error(cli, capsysbinary, "model", "add", "--titel", "x", "y")
    assert err.startswith("usage: dtindex model add ")
    err = usage_error(cli, capsysbinary, "export", "--model", "palette", "--format", "jsonn")
    assert err.startswith("usage: dtindex export ")
    assert "invalid choice: 'jsonn'" in err and "did you mean jsonl?" in err
    err = usage_error(cli, capsysbinary, "export", "--modle", "x")  # before -m is missing
    assert "unrecognized arguments: --modle x; did you mean --model?" in err
    assert "required" not in err
    assert "required: QUERY" in usage_error(cli, capsysbinary, "search", "--any")
    assert "required: ROOT" in usage_error(cli, capsysbinary, "forget")
    err = usage_error(cli, capsysbinary, "sacn", "gallery")
    assert "invalid choice: 'sacn'" in err and "did you mean scan" in err


def test_unknown_model_names_suggest_the_closest(cli, tmp_path: Path, indexed: Path) -> None:
    code, out, err = cli("scan", "-m", "palete", str(indexed), "--db", "elsewhere.sqlite")
    assert code == 1 and "no model named 'palete'; did you mean palette? (known: palette)" in err
    code, out, err = cli("tag", "palete", str(indexed))
    assert code == 2 and "did you mean palette?" in err
    code, out, err = cli("export", "--model", "palete", "--db", "elsewhere.sqlite")
    assert (code, out) == (1, b"")
    assert "model 'palete' has tagged nothing in this index; did you mean palette?" in err
    code, out, err = cli("search", "red_theem", "--db", "elsewhere.sqlite")
    assert (code, out) == (1, b"") and "no tag 'red_theem'; did you mean red_theme" in err
