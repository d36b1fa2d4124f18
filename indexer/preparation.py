"""A model's spec: how pictures are prepared for it and how its output is read.

Its settings come from two places (a `.model` file, `modelfile`, or a `deeptagger.toml`
table, `model_tables`); both go through `parse_settings`, so the allowed keys, values and
messages are the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from indexer.errors import ConfigError

Shape = Literal["nhwc", "nchw"]
Channels = Literal["rgb", "bgr"]
Interpret = Literal["sigmoid", "none"]
Resize = Literal["bilinear", "lanczos"]
Triple = tuple[float, float, float]

_CHOICES: dict[str, tuple[str, ...]] = {
    "shape": ("nhwc", "nchw"),
    "channels": ("rgb", "bgr"),
    "resize": ("bilinear", "lanczos"),
}
PAD_WORDS = ("white", "black", "edge", "stretch")
_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0)}
_BOOLS = ("normalize", "upscale")
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")
_NAMES = ("output", "embedding")
SPEC_KEYS = frozenset({*_CHOICES, *_BOOLS, *_NAMES, "pad", "size", "interpret", "mean", "std"})
# Added after versions were first stored: left out of `canonical` while unset, so a
# model's version (and its stored results) survives an upgrade.
_LATER_KEYS = ("mean", "std", "output", "embedding")


@dataclass(frozen=True)
class ModelSpec:
    """How pictures are prepared for a model and how its output is read."""

    shape: Shape = "nhwc"
    channels: Channels = "rgb"
    normalize: bool = False
    pad: str = "white"  # white, black, edge, stretch, or a colour "R,G,B"
    size: int | None = None
    interpret: Interpret = "none"
    upscale: bool = True
    mean: Triple | None = None  # value = (pixel/255 - mean[c]) / std[c], in RGB order
    std: Triple | None = None
    output: str | None = None  # the graph output holding the predictions (None: the first)
    embedding: str | None = None  # a graph output stored per picture
    # bilinear: JPEGs decoded DCT-scaled to the smallest size that still covers the input,
    # shrunk by a triangle (bilinear) filter, enlarged by bicubic; lanczos: the earlier
    # preparation, Lanczos from a (nearly) full decode, kept so that scores stored under
    # it stay current (see `canonical`). `imaging.prepare` says why.
    resize: Resize = "bilinear"

    def canonical(self) -> str:
        """Stable text of the settings, part of a model version's identity."""
        values = asdict(self)
        for key in _LATER_KEYS:
            if values[key] is None:
                del values[key]
        if values["resize"] == "lanczos":  # the preparation every earlier version used
            del values["resize"]
        return json.dumps(values, sort_keys=True)

    def pad_colour(self) -> tuple[int, int, int] | None:
        """The RGB colour the picture is padded with; None for `edge` and `stretch`."""
        if self.pad in _COLOURS:
            return _COLOURS[self.pad]
        if self.pad in PAD_WORDS:
            return None
        red, green, blue = (int(part) for part in self.pad.split(","))
        return red, green, blue


def _bool(value: object, where: str, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{where}: {key} = {value!r} is not a boolean (use true or false)")


def _triple(value: object, where: str, key: str, low: float, high: float) -> Triple:
    """Three numbers: a TOML list, or `a,b,c` as a `.model` file writes them."""
    parts = value.split(",") if isinstance(value, str) else value
    message = f"{where}: {key} = {value!r} must be three numbers"
    if not isinstance(parts, list | tuple) or len(parts) != 3:
        raise ConfigError(message)
    numbers = []
    for part in parts:
        if isinstance(part, bool):
            raise ConfigError(message)
        try:
            number = float(part.strip() if isinstance(part, str) else part)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(message) from None
        if not low <= number <= high:
            raise ConfigError(f"{message} from {low:g} to {high:g}")
        numbers.append(number)
    return numbers[0], numbers[1], numbers[2]


def _pad(value: object, where: str) -> str:
    """A word, or a colour as three integers from 0 to 255 (canonical: "R,G,B")."""
    if isinstance(value, str) and value.strip().lower() in PAD_WORDS:
        return value.strip().lower()
    try:
        colour = _triple(value, where, "pad", 0, 255)
    except ConfigError:
        words = ", ".join(PAD_WORDS)
        raise ConfigError(f"{where}: pad = {value!r} is not one of {words} or [R, G, B]") from None
    if any(c != int(c) for c in colour):
        raise ConfigError(f"{where}: pad = {value!r}: colours are whole numbers from 0 to 255")
    text = ",".join(str(int(c)) for c in colour)
    named = {",".join(map(str, rgb)): word for word, rgb in _COLOURS.items()}
    return named.get(text, text)  # [255, 255, 255] prepares as "white" does: one version


def _size(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: size = {value!r} is not a positive integer")
    try:
        size = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: size = {value!r} is not a positive integer") from None
    if not 1 <= size <= 16384:
        raise ConfigError(f"{where}: size = {value!r} is not between 1 and 16384")
    return size


def _interpret(value: object, where: str) -> str:
    text = str(value).strip().lower()
    if text == "sigmoid":
        return "sigmoid"
    if text in ("false", "none", "no", "probabilities", ""):
        return "none"
    raise ConfigError(f"{where}: interpret = {value!r} is not one of sigmoid, false")


def _value(key: str, value: object, where: str) -> object:
    if key in _CHOICES:
        text = str(value).strip().lower()
        if text not in _CHOICES[key]:
            raise ConfigError(
                f"{where}: {key} = {value!r} is not one of {', '.join(_CHOICES[key])}"
            )
        return text
    if key in _BOOLS:
        return _bool(value, where, key)
    if key in _NAMES:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key} = {value!r} must name a graph output")
        return value.strip()
    if key == "mean":
        return _triple(value, where, key, -1000, 1000)
    if key == "std":
        return _triple(value, where, key, 1e-6, 1000)
    if key == "pad":
        return _pad(value, where)
    if key == "size":
        return _size(value, where)
    if key == "interpret":
        return _interpret(value, where)
    raise ConfigError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(SPEC_KEYS))})")


def parse_settings(raw: Mapping[str, object], where: str) -> ModelSpec:
    """Validate preparation settings; `where` names the file (and table) for messages."""
    values = {key: _value(key, value, where) for key, value in raw.items()}
    if "mean" in values or "std" in values:
        if values.get("normalize") is False:
            raise ConfigError(
                f"{where}: mean and std apply to pixel/255; leave normalize out or set it true"
            )
        values["normalize"] = True
    return ModelSpec(**values)  # type: ignore[arg-type]
