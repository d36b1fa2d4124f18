"""The CLI is a thin layer over the core: no module under `indexer/cli` imports the
layers below the core (store, pipeline, gallery, imaging, models, export, the model
tables and settings). Read from the source with `ast`, so an import inside a function
counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "indexer"
# What the CLI may import of dtindex: the core, its own helpers, and the bottom layer's
# config, errors and wording (the messages' plurals and did-you-mean suggestions).
ALLOWED = ("cli", "core", "config", "errors", "wording", "suggest")
BELOW = ("store", "pipeline", "gallery", "imaging", "models")


def imported(path: Path, root: Path) -> list[tuple[int, str]]:
    """Each dtindex module `path` (in the package at `root`) imports, absolute, with its
    line."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base == "indexer":  # `from indexer import store`: the module it names
                found += [(node.lineno, f"indexer.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return [(line, name) for line, name in found if name.split(".")[0] == "indexer"]


def layer(name: str) -> str:
    """`indexer.store.records` -> `store`; `indexer.__version__` -> `__version__`."""
    return name.split(".")[1] if "." in name else ""


def refused(path: Path, root: Path = PACKAGE) -> list[str]:
    return [
        f"{path.relative_to(root.parent)}:{line}: {name}"
        for line, name in imported(path, root)
        if layer(name) not in ALLOWED and not layer(name).startswith("__")
    ]


def test_the_cli_imports_only_the_core_and_its_own_helpers() -> None:
    modules = sorted((PACKAGE / "cli").rglob("*.py"))
    assert len(modules) > 10 and PACKAGE / "cli" / "commands" / "watch.py" in modules
    wrong = [line for path in modules for line in refused(path)]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself: each way of importing a lower layer is caught, inside a function
    too, and relative imports are resolved."""
    fake = tmp_path / "indexer" / "cli" / "commands"
    fake.mkdir(parents=True)
    lines = [
        "import indexer.store.records",
        "from indexer.pipeline.flow import Budget",
        "from indexer import gallery",
        "from ...imaging import sniff",
        "def f():\n    from indexer.models.runtime import load",
        "from indexer.core.records import Counts",
        "from indexer import __version__",
        "from .. import options",
    ]
    (fake / "bad.py").write_text("\n".join(lines) + "\n")
    wrong = refused(fake / "bad.py", tmp_path / "indexer")
    assert [entry.split(": ")[1].split(".")[1] for entry in wrong] == list(BELOW)
