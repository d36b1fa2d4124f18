"""`dtindex model add NAME SOURCE`: add a downloaded model to `deeptagger.toml`;
`dtindex model check NAME PICTURES...`: compare its int8 and fp16 copies with fp32.

SOURCE is a `.model` file, a folder as the model was published (WD: model.onnx +
selected_tags.csv; ML-Danbooru: *.onnx + tags.csv; a DeepDanbooru project), or a Hugging
Face repository id such as SmilingWolf/wd-vit-tagger-v3 (downloaded with huggingface_hub,
or found in its cache). The model is loaded and run on one picture before the table,
with every setting spelled out, is appended to the config (created if needed), which
is named. The title is a `.model` file's `name=` (else the folder's name), and `size` is
the one the graph really has where its height and width are fixed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer.cli.commands import model_check
from indexer.cli.options import Context
from indexer.config import parse_config
from indexer.errors import ConfigError, UsageError
from indexer.imaging.messages import Target
from indexer.imaging.prepare import fill
from indexer.imaging.tasks import prepare_targets
from indexer.model_tables import ModelDef
from indexer.modelfile import read_model_file
from indexer.models.hub import hub_folder, looks_like_repo_id
from indexer.models.published import Detected, detect, tags_from_graph
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.preparation import parse_settings
from indexer.wording import plural

log = logging.getLogger("dtindex")
FAILURE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="add a model to the config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the model's name in the config")
    add.add_argument("source", metavar="SOURCE", help="a .model file, a folder, or owner/repo")
    check = sub.add_parser(
        "check",
        help="compare a model's int8 and fp16 copies with fp32 on your pictures",
        description=model_check.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model_check.add_arguments(check)


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


def check(definition: ModelDef) -> Tagger:
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


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "check":
        return model_check.run(args, ctx)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", args.name):
        raise UsageError(f"model name {args.name!r}: use letters, digits, '-' and '_'")
    if args.name in ctx.config.models:
        raise UsageError(f"{ctx.config_target}: a model named {args.name!r} is already there")
    if not ctx.config_named and _tracked_by_git(ctx.config_target):
        raise UsageError(
            f"{ctx.config_target}: found in this folder and tracked by git (a project's file, "
            f"not your config); name the config to add {args.name} to with --config FILE"
        )
    source = Path(args.source).expanduser()
    found_on_hub = not source.exists() and looks_like_repo_id(args.source)
    if found_on_hub:
        source = hub_folder(args.source, ctx.env)
    found = detect(source)
    if found_on_hub:
        found = replace(found, title=args.source)  # not the snapshot's hash
    if found.model_file is not None:  # its title is the name it declares
        found = replace(found, title=read_model_file(found.model_file).name)
    target = Path(os.path.abspath(ctx.config_target))
    written = None
    if found.tags_in_graph and found.onnx is not None:
        written = _write_tags(target.parent / f"{args.name}.tags", tags_from_graph(found.onnx))
        found = replace(found, tags=written)
    try:
        _add(args.name, found, target)
    except BaseException:
        if written is not None:
            written.unlink(missing_ok=True)
        raise
    return 0


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


def _add(name: str, found: Detected, target: Path) -> None:
    tagger = check(_definition(name, found))
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
    summary = f"input {tagger.height}x{tagger.width}, {plural(len(tagger.tags), 'tag')}"
    log.info("added %s (%s; %s, version %s)", name, found.family, summary, tagger.version)
    log.info("wrote [models.%s] to %s%s", name, target, " (created)" if created else "")


def _definition(name: str, found: Detected) -> ModelDef:
    if found.model_file is not None:
        declared = read_model_file(found.model_file)
        return ModelDef(name, declared.name, declared.onnx, declared.tags, declared.spec)
    if found.onnx is None or found.tags is None:
        raise ConfigError(f"{name}: incomplete model")
    spec = parse_settings(dict(found.settings), f"model {name}")
    return ModelDef(name, found.title, found.onnx, found.tags, spec)
