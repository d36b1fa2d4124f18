"""`deeptagger.toml`: read once into frozen dataclasses that are passed down.

Model tables are checked when the file is read (unknown keys, bad values), but their
files are only opened when the model is used, so a missing model never breaks a
command that does not need it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from indexer.errors import ConfigError
from indexer.model_tables import (
    BUILTIN_MODEL,
    ModelDef,
    ModelTable,
    builtin_table,
    number,
    parse_model_table,
    strings,
    unknown_keys,
)
from indexer.modelfile import check_model_name, read_model_file
from indexer.suggest import closest

_EXTENSIONS = "jpg jpeg jpe png gif webp bmp tif tiff avif heic heif jxl"
DEFAULT_EXTENSIONS = tuple(_EXTENSIONS.split())
DEFAULT_THRESHOLD = 0.1
# Where JPEGs are decoded (`imaging.gpu.choice` holds the rule): the GPU where it can,
# only the CPU, or only the GPU.
Decode = Literal["auto", "cpu", "gpu"]
DECODE_CHOICES: tuple[Decode, ...] = ("auto", "cpu", "gpu")


def threshold_or_default(value: float | None) -> float:
    """A model's own threshold where it sets one (0 included), else the default.

    The one place that decides this: `value or DEFAULT_THRESHOLD` would treat 0 as unset.
    """
    return DEFAULT_THRESHOLD if value is None else value


_TOP = "database roots store_threshold batch scan models max_pixels decode_timeout decoders"
_TOP_KEYS = {*_TOP.split(), "threads", "decode"}
_SCAN_KEYS = {"extensions", "exclude", "follow_symlinks"}


@dataclass(frozen=True)
class ScanConfig:
    extensions: frozenset[str] = frozenset(DEFAULT_EXTENSIONS)
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    database: Path | str | None = None  # a str: a database server's URL (`is_url`)
    roots: tuple[Path, ...] = ()
    store_threshold: float = 0.01
    batch: int = 8
    max_pixels: int = 100_000_000
    decode_timeout: float = 60.0
    decoders: int = 0  # decoder processes; 0: one per core
    threads: int = 0  # ONNX Runtime intra-op threads; 0: one per core
    decode: Decode = "auto"
    scan: ScanConfig = field(default_factory=ScanConfig)
    models: Mapping[str, ModelTable] = field(default_factory=dict)

    def model(self, name: str) -> ModelTable:
        if name in self.models:
            return self.models[name]
        if name == BUILTIN_MODEL:
            return builtin_table()
        names = {*self.models, BUILTIN_MODEL}
        where = f" in {self.path}" if self.path else ""
        known = f"{closest(name, names)} (known: {', '.join(sorted(names))})"
        raise ConfigError(f"no model named {name!r}{where}{known}")

    def resolve(self, name_or_path: str) -> ModelDef:
        """A `.model` path, or a model name from the config (or the built-in one)."""
        path = Path(name_or_path).expanduser()
        if name_or_path.endswith(".model") or (os.sep in name_or_path and path.is_file()):
            declared = read_model_file(path)
            return ModelDef(
                declared.name, declared.name, declared.onnx, declared.tags, declared.spec
            )
        return self.model(name_or_path).resolve()

    def default_models(self) -> tuple[ModelTable, ...]:
        """Enabled configured models, else the built-in one."""
        enabled = tuple(m for m in self.models.values() if m.enabled)
        return enabled or (builtin_table(),)


def is_url(value: str) -> bool:
    """Whether a `--db` or `database` value names a database server (a SQLAlchemy URL such
    as `postgresql://user@host/db`) rather than an SQLite file: the one rule for both."""
    return "://" in value


def _database(value: Any, rel: Callable[[Any, str], Path]) -> Path | str:
    """A URL as written; a path relative to the config file's folder."""
    return value if isinstance(value, str) and is_url(value) else rel(value, "database")


def locate_config(explicit: str | None, env: Mapping[str, str]) -> tuple[Path | None, bool]:
    """Return the config path and whether the user named it (a named one must exist)."""
    if explicit:
        return Path(explicit).expanduser(), True
    if env.get("DTINDEX_CONFIG"):
        return Path(env["DTINDEX_CONFIG"]).expanduser(), True
    local = Path("deeptagger.toml")
    if local.is_file():
        return local, False
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "dtindex" / "deeptagger.toml", False


def load_config(path: Path | None, required: bool = False) -> Config:
    if path is None or (not required and not path.is_file()):
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # Notepad writes a BOM
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    return parse_config(data, path)


def _decode(value: object, where: str) -> Decode:
    if value not in DECODE_CHOICES:
        raise ConfigError(f"{where}: decode = {value!r} is not one of {', '.join(DECODE_CHOICES)}")
    return value  # narrowed by the membership test


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    where = str(path)
    folder = path.parent
    unknown_keys(data, _TOP_KEYS, where)

    def rel(value: Any, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {key} must be a non-empty string path")
        return folder / Path(value).expanduser()

    scan_table = data.get("scan", {})
    if not isinstance(scan_table, dict):
        raise ConfigError(f"{where}: [scan] must be a table")
    unknown_keys(scan_table, _SCAN_KEYS, f"{where} [scan]")
    exts = strings(scan_table.get("extensions", list(DEFAULT_EXTENSIONS)), where, "extensions")
    excludes = strings(scan_table.get("exclude", []), where, "[scan] exclude")
    follow = scan_table.get("follow_symlinks", False)
    if not isinstance(follow, bool):  # bool("no") is True: only TOML's true and false will do
        raise ConfigError(f"{where} [scan]: follow_symlinks = {follow!r} must be true or false")
    scan = ScanConfig(frozenset(e.lower().lstrip(".") for e in exts), excludes, follow)
    models_table = data.get("models", {})
    if not isinstance(models_table, dict):
        raise ConfigError(f"{where}: [models] must hold [models.NAME] tables")
    models = {
        check_model_name(name, where): parse_model_table(name, t, where, rel)
        for name, t in models_table.items()
    }
    batch = data.get("batch", 8)
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 4096:
        raise ConfigError(f"{where}: batch = {batch!r} must be an integer from 1 to 4096")
    max_pixels = data.get("max_pixels", Config.max_pixels)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ConfigError(f"{where}: max_pixels = {max_pixels!r} must be a positive integer")
    counts = {}
    for key in ("decoders", "threads"):
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
            raise ConfigError(
                f"{where}: {key} = {value!r} must be an integer from 0 (one per core)"
            )
        counts[key] = value
    return Config(
        path=path,
        decode=_decode(data.get("decode", "auto"), where),
        decoders=counts["decoders"],
        threads=counts["threads"],
        database=_database(data["database"], rel) if "database" in data else None,
        roots=tuple(rel(r, "roots") for r in strings(data.get("roots", []), where, "roots")),
        store_threshold=number(data.get("store_threshold", 0.01), where, "store_threshold", 0, 1),
        batch=batch,
        max_pixels=max_pixels,
        decode_timeout=number(
            data.get("decode_timeout", 60.0), where, "decode_timeout", 0.1, 86400
        ),
        scan=scan,
        models=models,
    )
