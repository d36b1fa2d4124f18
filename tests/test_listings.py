"""What `models` and `status` list, through the CLI: readable at 100 columns, each thing
once, with what a user needs to act on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import inject_faults, picture, write_model

from indexer.wording import plural


def test_models_fit_100_columns_and_mark_what_scan_runs(cli, tmp_path: Path) -> None:
    long = write_model(tmp_path / "m", "long", mean=True)
    long.write_text(f"name = {'A very long title ' * 8}\n" + long.read_text().split("\n", 1)[1])
    off = write_model(tmp_path / "m", "off", positions=[0])
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.long]\nmodel = "{long}"\n[models.off]\nmodel = "{off}"\nenabled = false\n'
        f'[models.gone]\nmodel = "{tmp_path / "nowhere" / "deep" / "path" / "gone.model"}"\n'
    )
    code, out, err = cli("models")
    assert code == 0, err
    lines = out.decode().splitlines()
    # A path is never broken: one that is longer alone (a deep tmp_path) has its own line.
    too_long = [line for line in lines if len(line) > 100 and " " in line.strip()]
    assert not too_long, "\n".join(lines)
    assert lines[0] == f"config: {tmp_path / 'deeptagger.toml'}"
    starts = [line for line in lines[1:] if not line.startswith("    ")]
    assert starts[0].startswith('* long: custom "A very long title')
    assert starts[1] == '  off: custom "off" (disabled)'
    assert starts[2].startswith("* gone: unavailable:") and "gone.model" in out.decode()
    assert starts[3].startswith('  palette: custom "Palette colour tags (built in)"')
    assert lines[-1].startswith("* scan runs these")
    rows = [json.loads(line) for line in cli("models", "--json")[1].splitlines()]
    assert [(r["name"], r["scan"]) for r in rows] == [
        ("long", True), ("off", False), ("gone", True), ("palette", False)
    ]  # fmt: skip


def test_status_lists_each_failure_once_with_its_versions_and_kind(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = write_model(tmp_path / "m", "probe", positions=[0])
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.means]\nmodel = "{mean_model}"\n[models.probe]\nmodel = "{probe}"\n'
    )
    gallery = tmp_path / "gallery"
    picture(gallery / "good.png")
    (gallery / "broken.png").write_bytes(b"not a picture")
    (gallery / "copy-of-broken.png").write_bytes(b"not a picture")
    crash = picture(gallery / "crash.png", (1, 2, 3))
    with crash.open("ab") as handle:
        handle.write(b"CRASH-THIS-DECODER")
    inject_faults(monkeypatch, "CRASH-THIS-DECODER")
    code, _, err = cli("scan", str(gallery))
    assert code == 1, err  # the crash is retried by the next scan
    code, out, err = cli("status")
    assert code == 0, err
    failed = [line for line in out.decode().splitlines() if line.startswith("failed: ")]
    versions = {
        r["name"]: r["version"]
        for r in map(json.loads, cli("models", "--json")[1].split(b"\n")[:-1])
    }
    both = f"means {versions['means']}, probe {versions['probe']}"
    assert failed == [
        f"failed: {gallery / 'broken.png'}: not a picture Pillow can identify [picture; {both}]",
        f"failed: {gallery / 'crash.png'}: decoder crashed (signal SIGSEGV); picture skipped "
        f"[crash, retried by the next scan; {both}]",
    ]
    (record,) = [
        f for f in json.loads(cli("status", "--json")[1])["failures"] if f["kind"] == "picture"
    ]
    assert record["models"] == [f"means {versions['means']}", f"probe {versions['probe']}"]


def test_show_tells_a_folder_and_a_non_picture_from_a_picture_not_scanned(cli) -> None:
    picture(Path("gallery/red.png"))
    assert cli("scan", "-m", "palette", "gallery")[0] == 0
    code, out, err = cli("show", "gallery/../gallery")
    assert (code, out) == (1, b"") and "gallery/../gallery: a folder, not a picture" in err
    Path("gallery/notes.txt").write_text("not a picture\n")
    code, out, err = cli("show", "gallery/notes.txt")
    assert (code, out) == (1, b"") and "notes.txt: not a picture; dtindex does not index" in err
    picture(Path("gallery/blue.png"), (0, 0, 255), old=False)  # written after the scan
    code, out, err = cli("show", "gallery/blue.png")
    assert (code, out) == (1, b"") and "blue.png: not in the index (run dtindex scan)" in err


def test_counts_of_one_are_singular_on_both_streams(cli) -> None:
    picture(Path("gallery/red.png"))
    assert cli("scan", "-m", "palette", "gallery")[0] == 0
    code, out, err = cli("status")
    assert code == 0, err
    assert "(1 file, scanned" in out.decode() and "1 file, 1 distinct picture (" in out.decode()
    code, out, err = cli("forget", "gallery/../gallery")
    assert code == 0 and "forgot 1 root and 1 file (0 kept" in err
    code, out, err = cli("prune")
    assert code == 0 and "pruned 1 content, 0 model versions and " in err
    assert plural(2, "batch", "batches") == "2 batches"  # where an `s` will not do
