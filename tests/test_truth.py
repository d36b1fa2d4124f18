"""The index tells the truth: what the export shows after settings tried and undone, broken
models, failures of every kind, nested roots; each checked against a clean scan's export."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import clean_export, export, inject_faults, picture, save_graph
from onnx import TensorProto, helper, numpy_helper


def scan(cli, *args: str, code: int = 0) -> dict[str, int]:
    got, out, err = cli("scan", "--json", *args)
    assert got == code, err
    return json.loads(out) if out else {}


def configure(tmp_path: Path, model: Path, table: str = "", top: str = "") -> None:
    (tmp_path / "deeptagger.toml").write_text(f'{top}[models.means]\nmodel = "{model}"\n{table}')


def test_export_search_show_follow_the_configured_version(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    gallery = tmp_path / "gallery"
    picture(gallery / "red.png", (255, 0, 0), old=False)
    picture(gallery / "green.png", (0, 255, 0), old=False)
    configure(tmp_path, mean_model)
    scan(cli, "gallery")
    configured = export(cli)
    configure(tmp_path, mean_model, 'channels = "bgr"\n')  # tried...
    assert scan(cli, "gallery")["tagged"] == 2
    assert export(cli) != configured
    configure(tmp_path, mean_model)  # ...and undone: the older version is configured again
    assert scan(cli, "gallery")["tagged"] == 0
    assert export(cli) == configured
    code, out, err = cli("search", "c0", "--model", "means")
    assert (code, out) == (0, os.fsencode(gallery / "red.png") + b"\n"), err
    code, out, _ = cli("show", "gallery/./red.png")
    assert code == 0 and b"c0\t1.000" in out and b"c2\t1.000" not in out


def nan_model(folder: Path) -> Path:
    """Channel means times means/means: NaN for a channel whose mean is zero."""
    folder.mkdir(parents=True, exist_ok=True)
    inits = [numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["means"], keepdims=0),
        helper.make_node("Div", ["means", "means"], ["ones"]),
        helper.make_node("Mul", ["means", "ones"], ["scores"]),
    ]
    settings = "name = nan\nnormalize = true\npad = stretch\n"
    return save_graph(folder, "nan", nodes, inits, ["batch", 8, 8, 3], ["c0", "c1", "c2"], settings)


def test_non_finite_scores_fail_the_picture_never_mark_it_done(cli, tmp_path: Path) -> None:
    configure(tmp_path, nan_model(tmp_path / "models"))
    gallery = tmp_path / "gallery"
    picture(gallery / "grey.png", (100, 120, 140), old=False)
    picture(gallery / "red.png", (255, 0, 0), old=False)
    result = scan(cli, "gallery", code=1)
    assert (result["tagged"], result["failed"], result["to_retry"]) == (1, 1, 1)
    out = export(cli)
    assert b"nan" not in out.lower() and b"inf" not in out.lower()
    assert len(out.splitlines()) == 3  # grey only
    status = json.loads(cli("status", "--json")[1])
    assert [Path(f["path"]).name for f in status["failures"]] == ["red.png"]
    assert "model output is not a number" in status["failures"][0]["error"]
    (gallery / "grey.png").unlink()
    assert scan(cli, "gallery", code=1)["failed"] == 1  # retried, and fails again: exit 1


def test_a_limit_failure_waits_for_the_limit_to_be_raised(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, mean_model, top="max_pixels = 100\n")
    gallery = tmp_path / "gallery"
    picture(gallery / "big.png", (10, 200, 30), size=(16, 16))
    picture(gallery / "small.png", (10, 20, 30), size=(8, 8))
    first = scan(cli, "gallery")  # the picture needs more than allowed: not incomplete
    assert (first["tagged"], first["failed"], first["to_retry"]) == (1, 1, 0)
    again = scan(cli, "gallery")
    assert (again["hashed"], again["tagged"], again["failed"]) == (0, 0, 0)
    configure(tmp_path, mean_model, top="max_pixels = 1000\n")
    raised = scan(cli, "gallery")
    assert (raised["tagged"], raised["failed"]) == (1, 0)
    assert export(cli) == clean_export(cli, monkeypatch, tmp_path, ["gallery"])


def test_a_crashed_decoder_is_retried_by_the_next_scan(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", (10, 20, 30), old=False)
    crash = picture(gallery / "crash.png", (1, 2, 3), old=False)
    with open(crash, "ab") as handle:
        handle.write(b"CRASH-NOW")
    inject_faults(monkeypatch, "CRASH-NOW")
    first = scan(cli, "gallery", code=1)
    assert (first["failed"], first["to_retry"]) == (1, 1)
    monkeypatch.delenv("DTINDEX_TEST_FAULTS")
    second = scan(cli, "gallery")
    assert (second["tagged"], second["failed"]) == (1, 0)
    assert export(cli) == clean_export(cli, monkeypatch, tmp_path, ["gallery"])


def test_retry_failed_retries_even_the_pictures_own_faults(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, mean_model)
    gallery = tmp_path / "gallery"
    picture(gallery / "good.png", (10, 20, 30))
    (gallery / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert scan(cli, "gallery")["failed"] == 1  # the picture's fault: exit 0
    assert scan(cli, "gallery")["failed"] == 0  # not retried
    assert scan(cli, "--retry-failed", "gallery")["failed"] == 1


def always_failing_model(folder: Path) -> Path:
    """A Reshape to a width that never fits a dark-green gallery's batch: ONNX Runtime fails
    every batch at run time, while the load's trial batch (bright random pictures) passes.

    The width is 3 where the batch's green mean reaches 0.1 and 5 where it does not."""
    folder.mkdir(parents=True, exist_ok=True)
    constant = {
        "axes": np.array([1, 2], np.int64),
        "green": np.array([1], np.int64),
        "limit": np.array(0.1, np.float32),
        "two": np.array(2, np.int64),
        "three": np.array(3, np.int64),
        "zero": np.array([0], np.int64),
        "minus_one": np.array([-1], np.int64),
    }
    inits = [numpy_helper.from_array(value, name) for name, value in constant.items()]
    node = helper.make_node
    nodes = [
        node("ReduceMean", ["input", "axes"], ["means"], keepdims=0),
        node("Gather", ["means", "green"], ["greens"], axis=1),
        node("Less", ["greens", "limit"], ["dark"]),
        node("Cast", ["dark"], ["dark_n"], to=TensorProto.INT64),
        node("ReduceMax", ["dark_n"], ["any_dark"], keepdims=0),
        node("Mul", ["any_dark", "two"], ["extra"]),
        node("Add", ["extra", "three"], ["width"]),
        node("Unsqueeze", ["width", "zero"], ["width_1"]),
        node("Concat", ["minus_one", "width_1"], ["bad"], axis=0),
        node("Reshape", ["means", "bad"], ["scores"]),
    ]
    settings = "name = broken\nnormalize = true\npad = stretch\n"
    dims = ["batch", 8, 8, 3]
    return save_graph(folder, "broken", nodes, inits, dims, ["c0", "c1", "c2"], settings)


def test_a_model_failing_every_picture_stops_instead_of_failing_the_gallery(
    cli, tmp_path: Path
) -> None:
    configure(tmp_path, always_failing_model(tmp_path / "models"))
    gallery = tmp_path / "gallery"
    for i in range(12):
        picture(gallery / f"{i:02}.png", (i * 20, 5, 5), old=False)
    code, out, err = cli("scan", "-b", "4", "gallery")
    assert code == 1 and "the run stops" in err and out == b"", err
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        failed = db.execute("SELECT kind, COUNT(*) FROM taggings GROUP BY kind").fetchall()
    assert failed in ([], [("model", 1)], [("model", 2)])  # not the whole gallery


def test_unreadable_file_is_retried_once_readable_again(tmp_path: Path, mean_model: Path) -> None:
    """chmod changes the ctime, not the mtime: the stat alone would never read it again."""
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    gallery = tmp_path / "gallery"
    picture(gallery / "open.png", (10, 20, 30), old=False)
    locked = picture(gallery / "locked.png", (200, 20, 30), old=False)
    configure(tmp_path, mean_model)
    env = {**os.environ, "DTINDEX_DB": str(tmp_path / "index.sqlite")}
    env["DTINDEX_CONFIG"] = str(tmp_path / "deeptagger.toml")

    def dtindex(*args: str) -> subprocess.CompletedProcess[bytes]:
        command = [*prefix, sys.executable, "-m", "indexer", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=120)

    os.chmod(locked, 0o000)
    first = dtindex("scan", "--json", "gallery")
    assert first.returncode == 1 and b"Permission denied" in first.stderr, first.stderr
    assert json.loads(first.stdout)["to_retry"] == 1
    os.chmod(locked, 0o644)
    second = dtindex("scan", "--json", "gallery")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["new"] == 0
    exported = dtindex("export", "--model", "means")
    assert exported.returncode == 0
    assert len({line.split(b"\t")[0] for line in exported.stdout.splitlines()}) == 2


def test_nested_roots_share_files_and_an_empty_inner_root_stops_the_scan(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, mean_model)
    outer = tmp_path / "gallery"
    picture(outer / "top.png", (10, 20, 30))
    picture(outer / "disk" / "inner.png", (200, 20, 30))
    picture(outer / "disk" / "deeper" / "more.png", (20, 200, 30))
    assert scan(cli, "gallery")["hashed"] == 3
    for args in (["gallery/disk"], ["gallery"], ["gallery/../gallery/disk", "./gallery"]):
        result = scan(cli, *args)
        assert (result["hashed"], result["new"], result["removed"]) == (0, 0, 0), args
    before = export(cli)
    (outer / "disk").rename(tmp_path / "unplugged")
    (outer / "disk").mkdir()  # what an unmounted mount point looks like
    code, _, err = cli("scan", "gallery", "gallery/disk")
    assert code == 1 and "root is empty" in err and "nothing was removed" in err
    assert export(cli) == before


def test_threshold_zero_is_a_threshold(cli, tmp_path: Path, mean_model: Path) -> None:
    configure(tmp_path, mean_model, "threshold = 0\n")
    picture(tmp_path / "gallery" / "dim.png", (13, 128, 0))  # c0 = 0.05: kept, under 0.1
    scan(cli, "gallery")
    assert {line.split(b"\t")[1] for line in export(cli).splitlines()} == {b"c0", b"c1"}
    code, out, _ = cli("search", "c0", "--model", "means")
    assert code == 0 and out.endswith(b"dim.png\n")
    code, out, _ = cli("tag", "means", "gallery/dim.png")
    assert code == 0 and b"\tc0\t0.05\n" in out


def test_search_names_unknown_models_and_tags(cli, tmp_path: Path, mean_model: Path) -> None:
    configure(tmp_path, mean_model)
    picture(tmp_path / "gallery" / "a.png")
    scan(cli, "gallery")
    code, out, err = cli("search", "c0", "--model", "mean")
    assert (code, out) == (1, b"") and "did you mean means" in err
    code, out, err = cli("search", "c0x -c1", "--model", "means")
    assert (code, out) == (1, b"") and "no tag 'c0x'; did you mean c0" in err


def test_captions_of_two_roots_with_the_same_relative_path_do_not_collide(
    cli, tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, mean_model)
    picture(tmp_path / "a" / "g" / "x.png", (255, 0, 0))
    picture(tmp_path / "b" / "g" / "x.png", (0, 0, 255))
    scan(cli, "a/g", "b/g")
    code, _, err = cli("export", "--model", "means", "--format", "captions", "--out", "out")
    assert code == 0, err
    assert (tmp_path / "out" / "a" / "g" / "x.txt").read_text() == "c0\n"
    assert (tmp_path / "out" / "b" / "g" / "x.txt").read_text() == "c2\n"
