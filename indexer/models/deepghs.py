"""deepghs' published folders: `preprocess.json` stages and `thresholds.csv` as settings.

PixAI's ONNX export, the animetimm taggers and deepghs' Camie export describe their
preparation as a list of transform stages (imgutils' `create_pillow_transforms` reads
them: `{"stages": [...]}`, or `{"test": [...], "val": [...], "pre": [...]}` of which
`test` is used). The stages they publish map onto dtindex's settings: `pad_to_size`
fits the picture inside a square canvas of a colour, `resize` to a list squashes and to
an int after a square pad is a square resize, `center_crop` of the same square changes
nothing, `to_tensor` is channels-first RGB over 255, `normalize` gives mean and std.
Stages that crop a picture (a short-side resize without a pad) are refused by name.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from indexer.errors import ModelError

_COLOURS = ("white", "black")


def read_preprocess(path: Path) -> dict[str, object]:
    """Settings (as a model table would give them) from a `preprocess.json`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: cannot read: {exc}") from None
    stages = None
    if isinstance(data, dict):
        stages = data.get("stages", data.get("test", data.get("val")))
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        raise ModelError(f"{path}: expected {{'stages': [...]}} or {{'test': [...]}}")
    settings: dict[str, object] = {"shape": "nchw", "channels": "rgb", "normalize": False}
    square: int | None = None  # the side of the square picture so far, once it is one
    for number, stage in enumerate(stages, start=1):
        where = f"{path}: stage {number} ({stage.get('type')!r})"
        square = _stage(stage, settings, square, where)
    if "size" not in settings and square is not None:
        settings["size"] = square
    return settings


def _stage(
    stage: dict[str, Any], settings: dict[str, object], square: int | None, where: str
) -> int | None:
    kind = stage.get("type")
    if kind == "pad_to_size":
        side = _square(stage.get("size"), where)
        settings["pad"] = _colour(stage.get("background_color", "white"), where)
        settings["size"] = side
        return side
    if kind == "resize":
        size = stage.get("size")
        if isinstance(size, list) and len(size) == 1:
            size = size[0]
        if isinstance(size, int) and square is not None:
            settings["size"] = size  # a square resized by its short side stays square
            return size
        if isinstance(size, list):
            settings.setdefault("pad", "stretch")  # to [h, w] whatever the picture's shape
            side = _square(size, where)
            settings["size"] = side
            return side
        raise ModelError(f"{where}: a short-side resize without a square pad crops the picture")
    if kind == "center_crop":
        if square is None or _square(stage.get("size"), where) != square:
            raise ModelError(f"{where}: cropping the picture is not supported")
        return square
    if kind in ("to_tensor", "maybe_to_tensor"):
        settings["normalize"] = True
        return square
    if kind == "normalize":
        settings["mean"] = _three(stage.get("mean"), where)
        settings["std"] = _three(stage.get("std"), where)
        return square
    if kind == "convert_rgb":
        return square  # transparency goes over white for every model anyway
    raise ModelError(f"{where}: stage not supported")


def _square(size: object, where: str) -> int:
    sides = size if isinstance(size, list) else [size, size]
    numbers = [s for s in sides if isinstance(s, int) and not isinstance(s, bool) and s > 0]
    if len(sides) != 2 or len(numbers) != 2:
        raise ModelError(f"{where}: size {size!r} is not a size")
    side, other = numbers
    if side != other:
        raise ModelError(f"{where}: size {size!r} is not square (only square inputs are supported)")
    return side


def _colour(value: object, where: str) -> str | list[int]:
    if isinstance(value, str) and value.lower() in _COLOURS:
        return value.lower()
    if isinstance(value, list) and len(value) in (3, 4) and all(isinstance(v, int) for v in value):
        return [int(v) for v in value[:3]]  # an alpha channel of the background is dropped
    raise ModelError(f"{where}: background colour {value!r} is not a colour")


def _three(value: object, where: str) -> list[float]:
    if isinstance(value, int | float):
        return [float(value)] * 3
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int | float) for v in value)
    ):
        return [float(v) for v in value]
    raise ModelError(f"{where}: {value!r} is not one number or three")


def read_category_thresholds(path: Path) -> dict[str, float]:
    """`thresholds.csv` as deepghs publishes it: one row per category (`category`, `name`,
    `threshold`, then measurements); the first row of a category counts."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror or exc}") from None
    found: dict[str, float] = {}
    for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        name = (row.get("name") or row.get("category") or "").strip().lower()
        try:
            value = float(row.get("threshold") or "")
        except ValueError:
            raise ModelError(
                f"{path}:{number}: threshold {row.get('threshold')!r} is not a number"
            ) from None
        if name and name not in found and 0 <= value <= 1:
            found[name] = value
    return found
