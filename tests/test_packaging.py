"""The package builds without deprecation warnings: the licence is an SPDX expression.

setuptools deprecated `license = {text = ...}` tables and licence classifiers (an error
from 2027-02-18); the built metadata must carry `License-Expression` instead. The build
is pip's own, isolated, on a copy of the sources (the repository is left untouched).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_licence_is_an_spdx_expression_and_the_build_warns_of_nothing(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project["license"], str)
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("indexer", "migrations"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = built.stdout + built.stderr
    if built.returncode != 0 and "setuptools" in said and "No matching distribution" in said:
        pytest.skip("no package index to fetch setuptools from for an isolated build")
    assert built.returncode == 0, said[-3000:]
    assert "deprecat" not in said.lower(), [line for line in said.splitlines() if "eprecat" in line]
    (wheel,) = tmp_path.glob("dtindex-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "Classifier: License ::" not in metadata


def test_no_test_fault_ships_in_the_package() -> None:
    """A deliberate crash or busy loop is the tests' to inject (tests/hooks), not the
    decoder's to carry: nothing in the package reads the tests' fault variable."""
    sources = {p: p.read_text() for p in (ROOT / "indexer").rglob("*.py")}
    assert sources
    assert not [p for p, text in sources.items() if "TEST_FAULTS" in text or "SIGSEGV" in text]
