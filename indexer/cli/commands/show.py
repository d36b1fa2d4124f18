"""`dtindex show PATH`: a picture's stored tags, per model, with their scores, and each
model version that failed on it, with the reason."""

from __future__ import annotations

import argparse
import os

from indexer.cli.options import Context

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a picture in an indexed root")
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        default=0.1,
        metavar="T",
        help="show scores above T (default 0.1)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.index() as index:
        found = index.show(args.path, args.threshold)
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
            lines.append(f"  no tag scored above {args.threshold:g} (-t sets the threshold)")
        for tag in result.tags:
            kind = f" [{tag.category}]" if tag.category is not None else ""
            lines.append(f"  {tag.tag}\t{tag.score:.3f}{kind}")
    ctx.stdout.write(
        "\n".join(line for line in lines if line).encode("utf-8", "surrogateescape") + b"\n"
    )
    return 0
