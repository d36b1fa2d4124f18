"""`dtindex model add`: a model as downloaded (a `.model` file, a folder as published, or
a Hugging Face repository id), checked by running it on one picture, then appended to the
config as a table with every setting spelled out. Nothing is written when anything
fails, and the config written always loads."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from indexer.config import Config, parse_config
from indexer.errors import ConfigError, UsageError
from indexer.imaging.messages import Target
from indexer.imaging.prepare import fill
from indexer.imaging.tasks import prepare_targets
from indexer.model_tables import BUILTIN_MODEL, ModelDef
from indexer.modelfile import read_model_file
from indexer.models.hub import hub_folder, looks_like_repo_id
from indexer.models.published import Detected, detect, tags_from_graph
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.preparation import parse_settings

log = logging.getLogger("dtindex")


@dataclass(frozen=True)
class Added:
    """A model added: its `family` (as detected), its input size, tag count and version,
    and the config it was written to (`created`: made for it)."""

    name: str
    family: str
    height: int
    width: int
    tags: int
    version: str
    config: Path
    created: bool


def add_model(
    name: str,
    source: str,
    target: Path,
    config: Config,
    env: Mapping[str, str],
    config_named: bool = True,
) -> Added:
    """Add the model at `source` to the config file `target` (`config`: as read) as
    `name`; `config_named`: the user named the file (else one found in the current
    folder that git tracks is refused: a project's, not theirs)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise UsageError(f"model name {name!r}: use letters, digits, '-' and '_'")
    if name in config.models:
        raise UsageError(f"{target}: a model named {name!r} is already there")
    if name == BUILTIN_MODEL:  # its stored results would read as the new model's
        raise UsageError(f"{name!r} is the built-in model's name; choose another")
    if not config_named and _tracked_by_git(target):
        raise UsageError(
            f"{target}: found in this folder and tracked by git (a project's file, "
            f"not your config); name the config to add {name} to with --config FILE"
        )
    folder = Path(source).expanduser()
    found_on_hub = not folder.exists() and looks_like_repo_id(source)
    if found_on_hub:
        folder = hub_folder(source, env)
    found = detect(folder)
    if found_on_hub:
        found = replace(found, title=source)  # not the snapshot's hash
    if found.model_file is not None:  # its title is the name it declares
        found = replace(found, title=read_model_file(found.model_file).name)
    target = Path(os.path.abspath(target))
    written = None
    if found.tags_in_graph and found.onnx is not None:
        written = _write_tags(target.parent / f"{name}.tags", tags_from_graph(found.onnx))
        found = replace(found, tags=written)
    try:
        return _add(name, found, target)
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)
        raise


def _tracked_by_git(path: Path) -> bool:
    """Whether git tracks the file: a config found in the folder the command runs in may
    be a project's example (dtindex's own is), which `model add` must not grow unasked."""
    if not path.is_file():
        return False
    try:
        found = subprocess.run(
            ["git", "-C", str(path.parent), "ls-files", "--error-unmatch", "--", path.name],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False  # no git here: nothing it tracks
    return found.returncode == 0


def _write_tags(path: Path, names: list[str]) -> Path:
    """A tag list kept in a graph's metadata, as a file: read at every start, it is cheap
    there, and its bytes give the model version as any tag list's do."""
    if path.exists():
        raise UsageError(f"{path}: already there; remove it or choose another model name")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    os.replace(temporary, path)
    return path


def _add(name: str, found: Detected, target: Path) -> Added:
    tagger = _check(_definition(name, found))
    found = _as_loaded(found, tagger)
    text = _table(name, found, target.parent)
    created = not target.is_file()
    existing = "" if created else target.read_text(encoding="utf-8")
    combined = existing + ("\n" if existing and not existing.endswith("\n\n") else "") + text
    import tomllib

    parse_config(tomllib.loads(combined), target)  # never write a config that fails to load
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(combined, encoding="utf-8")
    os.replace(temporary, target)
    return Added(
        name, found.family, tagger.height, tagger.width, len(tagger.tags), tagger.version,
        target, created,
    )  # fmt: skip


def _definition(name: str, found: Detected) -> ModelDef:
    if found.model_file is not None:
        declared = read_model_file(found.model_file)
        return ModelDef(name, declared.name, declared.onnx, declared.tags, declared.spec)
    if found.onnx is None or found.tags is None:
        raise ConfigError(f"{name}: incomplete model")
    spec = parse_settings(dict(found.settings), f"model {name}")
    return ModelDef(name, found.title, found.onnx, found.tags, spec)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    return json.dumps(str(value))


def _table(name: str, found: Detected, folder: Path) -> str:
    def where(path: Path) -> str:
        absolute = path.resolve()
        try:
            return str(absolute.relative_to(folder.resolve()))
        except ValueError:
            return str(absolute)

    lines = [f"[models.{name}]", f"title = {_toml_value(found.title)}  # {found.family}"]
    if found.model_file is not None:
        lines.append(f"model = {_toml_value(where(found.model_file))}")
    else:
        assert found.onnx is not None and found.tags is not None
        lines += [
            f"onnx = {_toml_value(where(found.onnx))}",
            f"tags = {_toml_value(where(found.tags))}",
        ]
        lines += [f"{k} = {_toml_value(v)}" for k, v in found.settings.items()]
    lines += [f"{k} = {_toml_value(v)}" for k, v in found.thresholds.items()]
    return "\n".join(lines) + "\n"


def _check(definition: ModelDef) -> Tagger:
    """Load the model and run one picture through it (what fails, fails before the
    config is written); the model as loaded."""
    tagger = load(definition, RuntimeOptions(cpu=True))
    gradient = np.linspace(0, 255, 64 * 64 * 3).reshape(64, 64, 3).astype(np.uint8)
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(gradient).save(buffer, "PNG")
    pictures, _ = prepare_targets(
        buffer.getvalue(), [Target(tagger.spec, tagger.height, tagger.width)], 10**8
    )
    batch = tagger.new_batch(1)
    fill(batch[0], pictures[0], tagger.spec)
    tagger.run(batch)
    return tagger


def _as_loaded(found: Detected, tagger: Tagger) -> Detected:
    """The size recorded is the graph's where it fixes one, not the family's usual one."""
    if "size" not in found.settings or tagger.height != tagger.width:
        return found
    return replace(found, settings={**found.settings, "size": tagger.height})
