"""What every subcommand gets from the CLI: the config read once, streams, shared options."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from indexer.config import Config
from indexer.core import choosing, places, scanning
from indexer.core.choosing import threshold_value as threshold_value
from indexer.core.index import Index
from indexer.core.places import cache_folder as cache_folder
from indexer.imaging.sniff import Pictures
from indexer.model_tables import ModelDef
from indexer.modelfile import refuse_bare_graph
from indexer.models.runtime import RuntimeOptions, Tagger, parse_provider_option
from indexer.store.location import Location
from indexer.store.records import Records

log = logging.getLogger("dtindex")


@dataclass(frozen=True)
class Context:
    config: Config
    env: Mapping[str, str]
    db_option: str | None
    stdout: BinaryIO
    stderr_is_tty: bool
    config_target: Path = Path("deeptagger.toml")  # where `model add` writes
    config_named: bool = False  # the user named it (--config, DTINDEX_CONFIG)

    def database(self) -> Location:
        """Where the index is, as `Index.open` finds it (`core.places.database`)."""
        return places.database(self.db_option, self.env, self.config)

    def index(self, args: argparse.Namespace | None = None) -> Index:
        """The index the command works on; `args`: with its runtime options (`--cpu`,
        `-o`), for the commands that run models."""
        cpu = bool(getattr(args, "cpu", False))
        options = tuple(parse_provider_option(o) for o in getattr(args, "options", ()))
        return Index.open(
            self.db_option, self.config, env=self.env, cpu=cpu, provider_options=options
        )

    def current_version(self, model: str) -> str | None:
        """The configured version of `model` for readers (`Index.current_version`)."""
        return self.index().current_version(model)

    def resolve_model(self, name_or_path: str) -> ModelDef:
        """A `.model` path, or a model name from the config (or the built-in one)."""
        refuse_bare_graph(name_or_path)
        return self.config.resolve(name_or_path)


def add_runtime_arguments(parser: argparse.ArgumentParser, batch_default: str = "config") -> None:
    group = parser.add_argument_group("inference")
    group.add_argument(
        "-b",
        "--batch",
        type=int,
        metavar="N",
        help=f"pictures per model call (default: {batch_default} batch, 8)",
    )
    group.add_argument("--cpu", action="store_true", help="use only the CPU execution provider")
    group.add_argument(
        "-o",
        "--options",
        action="append",
        default=[],
        metavar="EP;K=V...",
        help='provider options, e.g. "CUDAExecutionProvider;device_id=1" (repeatable); '
        "naming TensorrtExecutionProvider asks for TensorRT",
    )
    group.add_argument(
        "-d", "--debug", action="store_true", help="report the providers each session really uses"
    )


def runtime_options(
    args: argparse.Namespace, config: Config, env: Mapping[str, str] | None = None
) -> RuntimeOptions:
    options = tuple(parse_provider_option(o) for o in args.options)
    return places.runtime(config, env or {}, args.cpu, options)


def batch_size(args: argparse.Namespace, config: Config) -> int:
    return choosing.batch_size(args.batch, config)


def expand_pictures(names: Iterable[str], extensions: frozenset[str]) -> Iterator[str]:
    """Names as given; a folder: the pictures under it (by name, else by their first
    bytes, as a scan finds them), in sorted order."""
    pictures = Pictures(extensions)
    for name in names:
        if os.path.isdir(name):
            for folder, dirs, files in os.walk(name):
                dirs.sort()
                for file in sorted(files):
                    path = os.path.join(folder, file)
                    if os.path.isfile(path) and pictures(os.fsencode(path)):
                        yield path
        else:
            yield name


def add_gallery_arguments(parser: argparse.ArgumentParser) -> None:
    """ROOT... and --model, shared by `scan` and `watch`."""
    parser.add_argument(
        "roots",
        nargs="*",
        metavar="ROOT",
        type=Path,
        help="gallery folders (default: the config's roots, else those indexed)",
    )
    parser.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="model to tag with (repeatable; default: every enabled model, "
        "else the built-in palette)",
    )


def select_roots(args_roots: Sequence[Path], ctx: Context, index: Records) -> list[Path]:
    """The roots to work on (`core.scanning.chosen_roots`)."""
    return scanning.chosen_roots(args_roots, ctx.config, index.root_paths())


def load_models(names: Sequence[str], ctx: Context, args: argparse.Namespace) -> list[Tagger]:
    return ctx.index(args).taggers(names)
