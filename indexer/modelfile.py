"""deeptagger's `.model` format: `key=value` lines naming a model and its settings, its
`.onnx` and `.tags` beside it sharing its stem."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import ConfigError
from indexer.preparation import ModelSpec, parse_settings


@dataclass(frozen=True)
class ModelFile:
    """What a deeptagger `.model` file declares."""

    name: str
    onnx: Path
    tags: Path
    spec: ModelSpec


def parse_model_text(text: str, where: str) -> dict[str, str]:
    """Split a `.model` file into key/value pairs: `key=value`, `#` comments, blank lines."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ConfigError(f"{where}:{number}: expected key=value, got {line.strip()!r}")
        if key in pairs:
            raise ConfigError(f"{where}:{number}: {key} is set twice")
        pairs[key] = value.strip()
    return pairs


def check_model_name(name: str, where: str) -> str:
    """`name`, refused where it is empty or holds a control character (a tab, a line
    break): XMP sidecars record a model's keywords as `MODEL<TAB>KEYWORD`, one a line, so
    such a model would never find its own keywords there again."""
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if not name.strip() or bad:
        why = "is empty" if not name.strip() else "holds a control character"
        raise ConfigError(f"{where}: model name {name!r} {why}; use letters, digits, '-', '_'")
    return name


def model_file_for(given: str) -> str:
    """`given`, or for an `.onnx` graph the deeptagger `.model` file beside it (the same
    stem), which says what the graph alone cannot: its tag list and settings. A graph
    without one is refused with what it lacks; reading it as a `.model` file would only
    say it is not text."""
    if not given.lower().endswith(".onnx"):
        return given
    beside = os.path.splitext(given)[0] + ".model"
    if os.path.isfile(beside):
        return beside
    folder = os.path.dirname(given) or "."
    raise ConfigError(
        f"{given}: an .onnx graph needs a .model file beside it (name, shape and other "
        "settings as key=value lines; the .onnx and .tags share its stem: see the "
        f"README's Models), or a table in the config: `dtindex model add NAME {folder}` "
        "writes one"
    )


def read_model_file(path: Path) -> ModelFile:
    """Read a deeptagger `.model` file (or the one beside an `.onnx` graph, see
    `model_file_for`); its `.onnx` and `.tags` share its stem."""
    path = Path(model_file_for(str(path)))
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not a key
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read model file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: model file is not UTF-8 text") from None
    pairs = parse_model_text(text, str(path))
    name = check_model_name(pairs.pop("name", "") or path.stem, str(path))
    spec = parse_settings(pairs, str(path))
    return ModelFile(
        name=name, onnx=path.with_suffix(".onnx"), tags=path.with_suffix(".tags"), spec=spec
    )
