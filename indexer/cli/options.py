"""What every subcommand gets from the CLI: the config read once, streams, shared options."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from indexer.config import DECODE_CHOICES, Config
from indexer.core import choosing, places
from indexer.core.choosing import threshold_value as threshold_value
from indexer.core.index import Index
from indexer.core.places import cache_folder as cache_folder

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

    def database(self) -> str:
        """Where the index is, as `Index.open` finds it, for messages (a URL without its
        password)."""
        return places.shown(places.database(self.db_option, self.env, self.config))

    def config_file(self) -> str | None:
        """The config file this run read (absolute), None where none was found: a
        `./deeptagger.toml` takes precedence over the user's own (README, Configuration),
        which surprises, so listings say which."""
        return None if self.config.path is None else str(self.config.path.absolute())

    def config_shown(self) -> str:
        """`config_file` in words."""
        found = self.config_file()
        return found or "none found (the built-in palette runs where no model is configured)"

    def index(self, args: argparse.Namespace | None = None) -> Index:
        """The index the command works on; `args`: with its runtime options (`--cpu`,
        `-o`), for the commands that run models."""
        cpu = bool(getattr(args, "cpu", False))
        options = places.provider_options(getattr(args, "options", ()))
        decode = getattr(args, "decode", None)
        return Index.open(self.db_option, self.config, env=self.env, cpu=cpu,
                          provider_options=options, decode=decode)  # fmt: skip


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
        "--decode",
        choices=DECODE_CHOICES,
        help="where JPEGs are decoded: auto (the GPU where nvImageCodec and CUDA are at "
        "hand), cpu, or gpu (required) (default: the config's decode, auto)",
    )
    group.add_argument(
        "-d", "--debug", action="store_true", help="report the providers each session really uses"
    )


def runtime_options(
    args: argparse.Namespace, config: Config, env: Mapping[str, str] | None = None
) -> places.RuntimeOptions:
    """How sessions are made for `args` (`--cpu`, `-o`), with the caches."""
    options = places.provider_options(args.options)
    return places.runtime(config, env or {}, args.cpu, options, args.decode)


def batch_size(args: argparse.Namespace, config: Config) -> int:
    return choosing.batch_size(args.batch, config)


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
