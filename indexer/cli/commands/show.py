"""`dtindex show PATH...`: each picture's stored tags, per model, with their scores, and
each model version that failed on it, with the reason. A path that cannot be shown is
said on stderr and the others still shown (exit 1), as `ls` does."""

from __future__ import annotations

import argparse
import logging
import os

from indexer.cli.options import Context
from indexer.core.records import Shown
from indexer.errors import UsageError

log = logging.getLogger("dtindex")

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", metavar="PATH", nargs="+", help="pictures in indexed roots")
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        default=0.1,
        metavar="T",
        help="show scores above T (default 0.1)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    blocks: list[str] = []
    failed = False
    with ctx.index() as index:
        for path in args.paths:
            try:
                blocks.append(_block(index.show(path, args.threshold), args.threshold))
            except UsageError as exc:
                log.error("%s", exc)
                failed = True
    if blocks:
        text = "\n\n".join(blocks) + "\n"
        ctx.stdout.write(text.encode("utf-8", "surrogateescape"))
    return FAILURE if failed else 0


def _block(found: Shown, threshold: float) -> str:
    """One picture: its path, hash and size, what failed on it, each model's tags."""
    size = f", {found.width}x{found.height}" if found.width is not None else ""
    lines = [f"{os.fsdecode(found.path)}", f"  sha1 {found.sha1}{size}" if found.sha1 else ""]
    if found.error:
        lines.append(f"  unreadable: {found.error}")
    lines += [
        f"  failed: {model} (version {version}): {why}" for model, version, why in found.failed
    ]
    for result in found.results:
        lines.append(f"{result.model} (version {result.version}):")
        if not result.tags:
            lines.append(f"  no tag scored above {threshold:g} (-t sets the threshold)")
        for tag in result.tags:
            kind = f" [{tag.category}]" if tag.category is not None else ""
            lines.append(f"  {tag.tag}\t{tag.score:.3f}{kind}")
    return "\n".join(line for line in lines if line)
