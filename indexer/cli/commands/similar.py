"""`dtindex similar PATH`: the pictures most like PATH, by a model's stored embeddings.

Prints `score<TAB>path`, best first (cosine similarity, 1 is the same vector); PATH
itself and its identical copies are left out. Works with a model whose table names an
`embedding` output (WD with embeddings, PixAI, animetimm, deepghs' Camie): the scan that
tagged PATH stored its embedding. The search is exact, over every picture the model
embedded (see the README for how far that goes).
"""

from __future__ import annotations

import argparse
import os

from sqlalchemy import Connection, bindparam, text

from indexer.cli.lookup import failed_for, file_error, not_indexed
from indexer.cli.options import Context
from indexer.errors import DtindexError, UsageError
from indexer.store.current import chosen_version
from indexer.store.engine import open_index
from indexer.store.likeness import Near, nearest, vector_of

FAILURE = 1
DEFAULT_COUNT = 10
_VERSION = f"SELECT {chosen_version(':content')}"
# Ordered, not MIN: PostgreSQL has no MIN over bytes.
_PATHS = text(
    "SELECT content_id, path FROM files WHERE content_id IN :contents ORDER BY content_id, path"
).bindparams(bindparam("contents", expanding=True))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a picture in an indexed root")
    parser.add_argument(
        "-m",
        "--model",
        metavar="NAME",
        help="whose embeddings (default: the one model that stores them)",
    )
    parser.add_argument(
        "-n", type=int, default=DEFAULT_COUNT, metavar="N",
        help=f"how many pictures to list (default {DEFAULT_COUNT})",
    )  # fmt: skip


def embedding_model(ctx: Context, asked: str | None) -> str:
    """The model named, or the one configured model that stores embeddings."""
    if asked is not None:
        if not ctx.config.model(asked).resolve().spec.embedding:
            raise UsageError(
                f"model {asked!r} stores no embeddings (its table names no `embedding` output)"
            )
        return asked
    storing = []
    for entry in ctx.config.models.values():
        try:
            if entry.enabled and entry.resolve().spec.embedding:
                storing.append(entry.name)
        except DtindexError:
            continue  # a model whose files are gone cannot be the one meant
    if len(storing) == 1:
        return storing[0]
    if not storing:
        raise UsageError(
            "no configured model stores embeddings; add one that has an embedding output "
            "(the README's model table lists them), then scan"
        )
    raise UsageError(
        f"several models store embeddings ({', '.join(storing)}): choose one with --model"
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.n < 1:
        raise UsageError(f"-n {args.n}: give a positive number of pictures")
    model = embedding_model(ctx, args.model)
    path = os.fsencode(os.path.abspath(args.path))
    engine = open_index(ctx.database(), readonly=True)
    try:
        with engine.connect() as conn:
            found = _search(conn, ctx, model, path, args)
            paths = _first_paths(conn, [near.content_id for near in found])
    finally:
        engine.dispose()
    lines = [(near.score, paths.get(near.content_id)) for near in found]
    shown = [(score, p) for score, p in lines if p is not None][: args.n]
    ctx.stdout.write(b"".join(b"%.4f\t%s\n" % (score, p) for score, p in shown))
    return 0


def _search(
    conn: Connection, ctx: Context, model: str, path: bytes, args: argparse.Namespace
) -> list[Near]:
    row = conn.execute(text("SELECT content_id FROM files WHERE path = :p"), {"p": path}).first()
    if row is None:
        raise UsageError(not_indexed(args.path, path, ctx.config.scan.extensions))
    if row[0] is None:
        raise UsageError(f"{args.path}: {file_error(conn, path)}")
    content = int(row[0])
    values = {"content": content, "model": model, "current": ctx.current_version(model)}
    version = conn.execute(text(_VERSION), values).scalar()
    if version is None:
        failed = failed_for(conn, args.path, path, model)
        raise UsageError(failed or f"{args.path}: not tagged by {model} yet (run dtindex scan)")
    query = vector_of(conn, int(version), content)
    if query is None:
        raise UsageError(
            f"{args.path}: {model} stored no embedding for it (tagged before it stored them?)"
        )
    # Contents whose files are gone are skipped when printed: ask for a few more.
    return nearest(conn, int(version), query, 2 * args.n + 16, leave_out=content)


def _first_paths(conn: Connection, contents: list[int]) -> dict[int, bytes]:
    """Each content's first path, in one query for all of them."""
    first: dict[int, bytes] = {}
    if contents:
        for content, path in conn.execute(_PATHS, {"contents": contents}):
            first.setdefault(int(content), bytes(path))
    return first
