"""The `dtindex` command: global options, subcommand dispatch, errors to exit codes.

This is the only place that turns exceptions into messages; stdout carries data only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from indexer import __version__
from indexer.cli.parsing import VALUED, Parser, add_global_options, parse
from indexer.cli.stopping import Interrupts
from indexer.errors import DtindexError, Interrupted

DESCRIPTION = """\
Keep an image gallery tagged by ONNX tagging models (WD v1.4/v3, DeepDanbooru,
ML-Danbooru, or the built-in `palette` colour model), incrementally, in SQLite.

  dtindex tag palette ~/pictures          tag pictures, print path<TAB>tag<TAB>weight
  dtindex scan ~/gallery                  index new and changed pictures
  dtindex export --model caformer | gallery tag "$GD" caformer "ML-Danbooru CAFormer"
"""


# name: (module under indexer.cli.commands, summary). A command's module is imported only
# when that command runs or shows its help: `dtindex --help` and `--version` import no
# SQLAlchemy, ONNX Runtime, NumPy or Pillow.
COMMANDS = {
    "tag": ("tag", "tag pictures and print path<TAB>tag<TAB>weight (no database)"),
    "scan": ("scan", "index new and changed pictures and tag what no model version has tagged"),
    "watch": ("watch", "catch up, then tag pictures as they arrive"),
    "export": ("export", "print stored tags for `gallery tag`, or write captions, XMP, Hydrus"),
    "search": ("search", "list files whose stored tags match a query"),
    "show": ("show", "print a picture's stored tags per model"),
    "similar": ("similar", "list the pictures most like a picture, by stored embeddings"),
    "model": ("model", "add a model as downloaded, or check its int8/fp16 copies"),
    "models": ("models", "list models, their versions and coverage"),
    "status": ("status", "show roots, counts and failures"),
    "forget": ("forget", "remove roots (deleted or not) and their files from the index"),
    "prune": ("prune", "remove pictures no file shows and superseded model versions"),
}


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv`, found before parsing (past the global options that
    come before it)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in VALUED:
            skip = True
        elif not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"indexer.cli.commands.{COMMANDS[name][0]}")


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """The top-level parser; only the chosen command's module is imported and its
    arguments added (with the global options again, accepted after its name too)."""
    parser = Parser(
        prog="dtindex",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser)
    parser.add_argument("--version", action="version", version=f"dtindex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        module = command_module(name) if name == chosen else None
        child = sub.add_parser(
            name,
            help=summary,
            description=(module.__doc__ if module else None) or summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if module is not None:
            module.add_arguments(child)
            add_global_options(child, repeated=True)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("dtindex: %(message)s"))
    log = logging.getLogger("dtindex")
    log.handlers[:] = [handler]
    log.propagate = False
    debug = args.verbose or getattr(args, "debug", False)
    log.setLevel(logging.DEBUG if debug else logging.WARNING if args.quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. Ctrl-C at any point ends it as interrupted (130),
    and a reader that goes away (`| head`) ends it quietly (0), as Unix tools do."""
    with Interrupts() as interrupts:
        try:
            return _main(list(sys.argv[1:] if argv is None else argv), interrupts)
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing left for Python to flush at exit
            return 0
        except Exception:
            if not interrupts.received:
                raise
        print("dtindex: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def _main(argv: list[str], interrupts: Interrupts) -> int:
    args = parse(build_parser(chosen_command(argv)), argv)
    # Imported here, not at the top: decoder processes are spawned, and a spawned child
    # imports the parent's main module (this one, through the `dtindex` script) before it
    # can decode; SQLAlchemy alone would add 0.15 s to every worker's start.
    from sqlalchemy.exc import SQLAlchemyError

    from indexer.cli.options import Context
    from indexer.config import load_config, locate_config

    _setup_logging(args)
    module = command_module(args.command)
    database: str | None = None
    try:
        path, named = locate_config(args.config, os.environ)
        ctx = Context(
            config=load_config(path, required=named),
            env=dict(os.environ),
            db_option=args.db,
            stdout=sys.stdout.buffer,
            stderr_is_tty=sys.stderr.isatty(),
            config_target=path if path is not None else Path("deeptagger.toml"),
            config_named=named,
        )
        database = ctx.database()
        return int(module.run(args, ctx))
    except Interrupted as exc:
        print(f"dtindex: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except (DtindexError, SQLAlchemyError) as exc:
        if interrupts.received:  # an import cut short, reported as what it broke
            raise KeyboardInterrupt from exc
        if isinstance(exc, SQLAlchemyError):
            print(f"dtindex: {_database_message(exc, database)}", file=sys.stderr)
            return 1
        print(f"dtindex: {exc}", file=sys.stderr)
        return int(getattr(module, "FAILURE", 1))


SQLITE_FULL = 13


def _database_message(exc: Exception, db: str | None) -> str:
    """The database's own words: SQLAlchemy's wrapper hides a full disk behind others."""
    detail = getattr(exc, "orig", None) or exc
    if getattr(detail, "sqlite_errorcode", None) == SQLITE_FULL or "disk is full" in str(detail):
        where = f"{db}: " if db else ""
        return (
            f"{where}disk is full; what was committed is kept: free some space and run "
            "the scan again"
        )
    return f"index database error: {detail}"


def main_entry() -> None:
    # Outside `main` (just before it, and during Python's shutdown, which joins what is
    # left of the decoders) a Ctrl-C ends the process at once, not with a traceback.
    signal.signal(signal.SIGINT, lambda _signum, _frame: os._exit(128 + signal.SIGINT))
    code = main()
    if code == 128 + signal.SIGINT:
        # A Ctrl-C inside code an extension ran through PyRun_* (ONNX Runtime's import)
        # leaves CPython set to kill itself with SIGINT at exit, whatever caught it: end
        # here with the status decided. The decoders were stopped on the way out.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
