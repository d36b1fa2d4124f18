"""The command line's grammar: global options before or after the subcommand, errors in
the words (and usage) of the command they are about, suggestions for misspelt names.

Light to import, as `main` is: argparse, and nothing of the commands.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from indexer.suggest import close_names, closest, did_you_mean

VALUED = ("--config", "--db")  # global options that take a value


class Parser(argparse.ArgumentParser):
    """argparse, suggesting the closest choice (a subcommand, a `--format`) to a wrong one."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            hint = closest(str(value), [str(c) for c in action.choices or ()])
            if not hint:
                raise
            raise argparse.ArgumentError(action, f"{exc.message}{hint}") from None


def add_global_options(parser: argparse.ArgumentParser, *, repeated: bool = False) -> None:
    """--config, --db, -v and -q. `repeated`: on a subcommand and the subcommands it has,
    with no defaults, so `dtindex scan -q DIR` works and an option given before the
    subcommand is not undone by its absence after it."""
    group: Any = parser.add_argument_group("global options") if repeated else parser
    unset: dict[str, Any] = {"default": argparse.SUPPRESS} if repeated else {}
    group.add_argument(
        "--config",
        metavar="PATH",
        help="config file (env DTINDEX_CONFIG; default ./deeptagger.toml, "
        "else $XDG_CONFIG_HOME/dtindex/deeptagger.toml)",
        **unset,
    )
    group.add_argument(
        "--db",
        metavar="PATH|URL",
        help="index database: an SQLite file, or postgresql://USER@HOST:PORT/DB "
        "(env DTINDEX_DB; default: config's database, "
        "else $XDG_DATA_HOME/dtindex/index.sqlite)",
        **unset,
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", help="more messages on stderr", **unset
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors", **unset
    )
    if repeated:
        for nested in _subparsers(parser):
            add_global_options(nested, repeated=True)


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def _chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost (sub)command `args` went to: `dtindex model add`, not `dtindex`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(args, action.dest, None)
            if name in action.choices:
                return _chosen(action.choices[name], args)
    return parser


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for nested in _subparsers(parser):
        yield from _parsers(nested)


@contextlib.contextmanager
def _nothing_required(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Every (sub)command's required arguments made optional for a while."""
    required = [a for p in _parsers(parser) for a in p._actions if a.required]
    for action in required:
        action.required = False
    try:
        yield
    finally:
        for action in required:
            action.required = True


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse `argv`; what no (sub)command knows is an error of the innermost one, with its
    usage and the closest options it has.

    Unknown arguments are looked for first with nothing required: argparse would report
    `--modle x` as a missing `--model`, not as the typo it is.
    """
    with _nothing_required(parser):
        args, unknown = parser.parse_known_args(argv)
    if unknown:
        chosen = _chosen(parser, args)
        options = {option.lstrip("-"): option for option in chosen._option_string_actions}
        close = [
            name
            for token in unknown
            if token.startswith("-")
            for name in close_names(token.split("=")[0].lstrip("-"), options)
        ]
        hint = did_you_mean(close)
        chosen.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return parser.parse_args(argv)
