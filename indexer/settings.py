"""Model settings: the frozen spec that drives preparation, and deeptagger's `.model` format.

Settings come from two places (a `.model` file or a `deeptagger.toml` table); both go
through `parse_settings`, so the allowed keys, values and messages are the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from indexer.errors import ConfigError

Shape = Literal["nhwc", "nchw"]
Channels = Literal["rgb", "bgr"]
Pad = Literal["white", "edge", "stretch"]
Interpret = Literal["sigmoid", "none"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "shape": ("nhwc", "nchw"),
    "channels": ("rgb", "bgr"),
    "pad": ("white", "edge", "stretch"),
}
_BOOLS = ("normalize", "upscale")
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")
SPEC_KEYS = frozenset({*_CHOICES, *_BOOLS, "size", "interpret"})


@dataclass(frozen=True)
class ModelSpec:
    """How pictures are prepared for a model and how its output is read."""

    shape: Shape = "nhwc"
    channels: Channels = "rgb"
    normalize: bool = False
    pad: Pad = "white"
    size: int | None = None
    interpret: Interpret = "none"
    upscale: bool = True

    def canonical(self) -> str:
        """Stable text of the settings, part of a model version's identity."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class ModelFile:
    """What a deeptagger `.model` file declares."""

    name: str
    onnx: Path
    tags: Path
    spec: ModelSpec


def _bool(value: object, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{where}: {key} = {value!r} is not a boolean (use true or false)")


def parse_settings(raw: Mapping[str, object], where: str) -> ModelSpec:
    """Validate preparation settings; `where` names the file (and table) for messages."""
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key in _CHOICES:
            text = str(value).strip().lower()
            if text not in _CHOICES[key]:
                allowed = ", ".join(_CHOICES[key])
                raise ConfigError(f"{where}: {key} = {value!r} is not one of {allowed}")
            values[key] = text
        elif key in _BOOLS:
            values[key] = _bool(value, where, key)
        elif key == "size":
            if isinstance(value, bool):
                raise ConfigError(f"{where}: size = {value!r} is not a positive integer")
            try:
                size = int(str(value).strip())
            except ValueError:
                raise ConfigError(f"{where}: size = {value!r} is not a positive integer") from None
            if not 1 <= size <= 16384:
                raise ConfigError(f"{where}: size = {value!r} is not between 1 and 16384")
            values[key] = size
        elif key == "interpret":
            text = str(value).strip().lower()
            if text in ("sigmoid",):
                values[key] = "sigmoid"
            elif text in ("false", "none", "no", "probabilities", ""):
                values[key] = "none"
            else:
                raise ConfigError(f"{where}: interpret = {value!r} is not one of sigmoid, false")
        else:
            allowed = ", ".join(sorted(SPEC_KEYS))
            raise ConfigError(f"{where}: unknown key {key!r} (allowed: {allowed})")
    return ModelSpec(**values)  # type: ignore[arg-type]


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


def read_model_file(path: Path) -> ModelFile:
    """Read a deeptagger `.model` file; its `.onnx` and `.tags` share its stem."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not a key
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read model file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: model file is not UTF-8 text") from None
    pairs = parse_model_text(text, str(path))
    name = pairs.pop("name", "") or path.stem
    spec = parse_settings(pairs, str(path))
    return ModelFile(
        name=name, onnx=path.with_suffix(".onnx"), tags=path.with_suffix(".tags"), spec=spec
    )
