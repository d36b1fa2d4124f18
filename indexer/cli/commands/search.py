"""`dtindex search`: files whose stored tags match a query.

    dtindex search "1girl blue_hair -solo rating:general" --model wd14

Terms are ANDed (`--any` ORs the wanted ones); `-tag` excludes; `rating:X` is the rating
tag X. A picture has a tag where the export gives it that tag: the model's thresholds
per category (its `threshold`, else 0.1, for the others), and its best rating; the
threshold options ask for others, as they do the export's. A query that starts with `-`
goes after `--`: `dtindex search -- "-solo"`.
"""

from __future__ import annotations

import argparse

from sqlalchemy import Connection

from indexer.cli.options import Context, indexed_model
from indexer.cli.rules import add_threshold_arguments, refuse_categories, rules_from
from indexer.errors import UsageError
from indexer.store.engine import open_index
from indexer.store.queries import categories
from indexer.store.search import search, tag_names
from indexer.suggest import closest

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="QUERY", help='tags, e.g. "1girl blue_hair -solo"')
    parser.add_argument(
        "-m",
        "--model",
        metavar="NAME",
        help="model whose tags to search (default: the only one indexed)",
    )
    parser.add_argument("--any", action="store_true", help="match any wanted tag, not all")
    add_threshold_arguments(parser, mcut=False)


def parse_query(query: str) -> tuple[list[str], list[str]]:
    wanted: list[str] = []
    unwanted: list[str] = []
    for term in query.split():
        negative = term.startswith("-") and len(term) > 1
        name = term[1:] if negative else term
        if name.startswith("rating:"):
            name = name.split(":", 1)[1]
        (unwanted if negative else wanted).append(name)
    if not wanted and not unwanted:
        raise UsageError("the query names no tag")
    return wanted, unwanted


def _check_names(conn: Connection, model: str, terms: list[str]) -> None:
    """An unknown tag is an error, not an empty result that looks like "none"."""
    names = tag_names(conn, model)
    for term in terms:
        if term not in names:
            raise UsageError(f"model {model!r} has no tag {term!r}{closest(term, names)}")


def run(args: argparse.Namespace, ctx: Context) -> int:
    wanted, unwanted = parse_query(args.query)
    engine = open_index(ctx.database(), readonly=True)
    try:
        with engine.connect() as conn:
            model = indexed_model(conn, args.model)
            _check_names(conn, model, [*wanted, *unwanted])
            refuse_categories(args, model, categories(conn, model))
            rules = rules_from(args, ctx, model)
            current = ctx.current_version(model)
            paths = search(conn, model, current, wanted, unwanted, rules.limit, args.any)
    finally:
        engine.dispose()
    ctx.stdout.write(b"".join(p + b"\n" for p in paths))
    ctx.stdout.flush()
    return 0
