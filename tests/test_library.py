"""`import indexer` as a library, and a start-up that imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import picture, write_model

HEAVY = ("sqlalchemy", "alembic", "onnxruntime", "numpy", "PIL")


def imported_by(*argv: str) -> set[str]:
    """Top-level modules `python -X importtime -m indexer ARGV` imports."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "indexer", *argv],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()]
    return {row.split(".")[0] for row in rows if row and not row.startswith("import time")}


def test_version_and_help_import_no_heavy_library() -> None:
    for argv in (["--version"], ["--help"]):
        loaded = imported_by(*argv)
        assert "indexer" in loaded  # the check sees imports
        assert not loaded & set(HEAVY), (argv, sorted(loaded & set(HEAVY)))


def test_import_indexer_is_cheap() -> None:
    code = "import sys, indexer; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "'indexer'" in loaded and not any(f"'{name}'" in loaded for name in HEAVY)


def test_load_model_tags_exactly_as_dtindex_tag(cli, tmp_path: Path) -> None:
    import indexer

    model = write_model(tmp_path / "models", "probe", positions=[0, 1, 2, 5, 40], size=8)
    model.write_text(model.read_text() + "normalize = true\n")
    pictures = [
        picture(tmp_path / "p" / "a.png", (200, 100, 50), size=(30, 10), old=False),
        picture(tmp_path / "p" / "b.jpg", (10, 220, 130), size=(9, 16), fmt="JPEG"),
        tmp_path / "p" / "missing.png",
        picture(tmp_path / "p" / "c.png", (90, 90, 250), size=(8, 8)),
    ]
    code, out, _ = cli("tag", "-b", "2", str(model), *map(str, pictures))
    assert code == 1  # the missing picture
    with indexer.load_model(model) as loaded:
        found = list(loaded.tag(pictures, batch=2))
        assert [p for p, _ in loaded.failures] == [str(pictures[2])]
    lines = [f"{path}\t{tag}\t{score:.2f}\n" for path, tags in found for tag, score in tags.items()]
    assert "".join(lines).encode() == out
    assert [Path(p).name for p, _ in found] == ["a.png", "b.jpg", "c.png"]


def test_scan_from_python_counts_as_scan_json(cli, tmp_path: Path, mean_model: Path) -> None:
    import indexer

    config = tmp_path / "deeptagger.toml"
    config.write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    for i in range(3):
        picture(tmp_path / "g" / f"{i}.png", (i * 60, 10, 10))
    counts = indexer.scan(["g"], db=tmp_path / "lib.sqlite", config=config)
    code, out, err = cli("--db", str(tmp_path / "cli.sqlite"), "scan", "--json", "g")
    assert code == 0, err
    assert counts == json.loads(out)
    assert counts["tagged"] == 3
