"""A model's table in `deeptagger.toml` (or the built-in model): what it declares, and
the definition a run loads once its `.model` file, if any, has been read.

Tables are checked when the config is read (unknown keys, bad values); their files are
opened only when the model is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from indexer.errors import ConfigError
from indexer.modelfile import read_model_file
from indexer.preparation import SPEC_KEYS, ModelSpec, parse_settings

BUILTIN_MODEL = "palette"
# Copies of a graph a model's table can ask for (`fp16 = true`); see indexer.models.variants.
VARIANTS = ("fp16", "int8")
_MODEL_KEYS = {"model", "onnx", "tags", "title", "threshold", "general", "character", "thresholds"}
_MODEL_KEYS |= {"enabled", *VARIANTS} | SPEC_KEYS


@dataclass(frozen=True)
class ModelDef:
    """A model ready to load: its files, settings and default threshold."""

    name: str
    title: str
    onnx: Path
    tags: Path
    spec: ModelSpec
    threshold: float | None = None
    general: float | None = None
    character: float | None = None
    variant: str = ""  # run a copy of the graph: "fp16" or "int8" (models/variants.py)
    categories: tuple[tuple[str, float], ...] = ()  # thresholds of other categories, by name


@dataclass(frozen=True)
class ModelTable:
    """A model as its table declares it; `resolve` reads its `.model` file when it is used."""

    name: str
    where: str
    title: str | None = None
    threshold: float | None = None
    general: float | None = None
    character: float | None = None
    enabled: bool = True
    variant: str = ""
    categories: tuple[tuple[str, float], ...] = ()
    model_file: Path | None = None

    def category_thresholds(self) -> dict[str, float]:
        """Every category's own threshold: `general` and `character` are the usual two."""
        named = dict(self.categories)
        for key in ("general", "character"):
            value = getattr(self, key)
            if value is not None:
                named[key] = value
        return named

    onnx: Path | None = None
    tags: Path | None = None
    settings: tuple[tuple[str, Any], ...] = ()

    def resolve(self) -> ModelDef:
        overrides = dict(self.settings)
        if self.model_file is not None:
            declared = read_model_file(self.model_file)
            unset = vars(ModelSpec())
            base = {k: v for k, v in vars(declared.spec).items() if v != unset[k]}
            spec = parse_settings({**base, **overrides}, self.where)
            onnx, tags, title = declared.onnx, declared.tags, declared.name
        else:
            assert self.onnx is not None and self.tags is not None
            spec = parse_settings(overrides, self.where)
            onnx, tags, title = self.onnx, self.tags, self.name
        return ModelDef(
            self.name,
            self.title or title,
            onnx,
            tags,
            spec,
            self.threshold,
            self.general,
            self.character,
            self.variant,
            self.categories,
        )


def builtin_table() -> ModelTable:
    folder = Path(str(resources.files("indexer.models.builtin")))
    return ModelTable(
        name=BUILTIN_MODEL,
        where="built-in palette model",
        title="Palette colour tags (built in)",
        model_file=folder / "palette.model",
    )


def unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"
            )


def number(value: Any, where: str, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{where}: {key} = {value!r} must be a number from {low} to {high}")
    return float(value)


def strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def parse_model_table(name: str, table: Any, where: str, rel: Any) -> ModelTable:
    here = f"{where} [models.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{here}: must be a table")
    unknown_keys(table, _MODEL_KEYS, here)
    settings = {k: v for k, v in table.items() if k in SPEC_KEYS}
    parse_settings(settings, here)  # fail early on bad values
    limits = {}
    for key in ("threshold", "general", "character"):
        if table.get(key) is not None:
            limits[key] = number(table[key], here, key, 0, 1)
    categories = table.get("thresholds", {})
    if not isinstance(categories, dict):
        raise ConfigError(f"{here}: thresholds must be a table of category = threshold")
    per_category = tuple(
        (str(k).lower(), number(v, here, f"thresholds.{k}", 0, 1)) for k, v in categories.items()
    )
    flags = {key: table.get(key, key == "enabled") for key in ("enabled", *VARIANTS)}
    for key, flag in flags.items():
        if not isinstance(flag, bool):
            raise ConfigError(f"{here}: {key} = {flag!r} must be true or false")
    chosen = [key for key in VARIANTS if flags[key]]
    if len(chosen) > 1:
        both = " and ".join(f"{key} = true" for key in chosen)
        raise ConfigError(f"{here}: {both} cannot be combined; choose one copy of the graph")
    title = table.get("title")
    if title is not None and not isinstance(title, str):
        raise ConfigError(f"{here}: title must be a string")
    common = dict(
        name=name,
        where=here,
        title=title,
        enabled=flags["enabled"],
        variant=chosen[0] if chosen else "",
        categories=per_category,
        settings=tuple(sorted(settings.items())),
        **limits,
    )
    if "model" in table:
        if "onnx" in table or "tags" in table:
            raise ConfigError(f"{here}: give either model, or onnx and tags, not both")
        return ModelTable(model_file=rel(table["model"], "model"), **common)  # type: ignore[arg-type]
    if "onnx" not in table or "tags" not in table:
        raise ConfigError(f'{here}: needs model = "x.model", or both onnx and tags')
    return ModelTable(onnx=rel(table["onnx"], "onnx"), tags=rel(table["tags"], "tags"), **common)  # type: ignore[arg-type]
