"""`dtindex similar PATH`: the pictures most like PATH, by a model's stored embeddings.

Prints `score<TAB>path`, best first (cosine similarity, 1 is the same vector); PATH
itself and its identical copies are left out. Works with a model whose table names an
`embedding` output (WD with embeddings, PixAI, animetimm, deepghs' Camie): the scan that
tagged PATH stored its embedding. The search is exact, over every picture the model
embedded (see the README for how far that goes).
"""

from __future__ import annotations

import argparse

from indexer.cli.options import Context

FAILURE = 1
DEFAULT_COUNT = 10


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


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.index() as index:
        found = index.similar(args.path, args.model, args.n)
    ctx.stdout.write(b"".join(b"%.4f\t%s\n" % (near.score, near.path) for near in found))
    return 0
