"""`dtindex status`: the roots, what the index holds, and which pictures failed and why."""

from __future__ import annotations

import argparse
import json
import os
import time

from indexer.cli.options import Context
from indexer.store.engine import open_index
from indexer.store.queries import failures, roots_summary, totals

FAILURE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument(
        "--failures",
        type=int,
        default=20,
        metavar="N",
        help="list up to N failed pictures (default 20)",
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    db = ctx.database_path()
    engine = open_index(db, readonly=True)
    try:
        with engine.connect() as conn:
            roots = roots_summary(conn)
            counts = totals(conn)
            failed = failures(conn, args.failures)
    finally:
        engine.dispose()
    if args.json:
        record = {
            "database": str(db),
            "roots": [{"path": os.fsdecode(p), "files": n, "scanned_ns": s} for p, s, n in roots],
            **counts,
            "failures": [{"path": os.fsdecode(p), "error": e} for p, e in failed],
        }
        ctx.stdout.write(json.dumps(record).encode() + b"\n")
        return 0
    lines = [f"index: {db}"]
    for path, scanned, count in roots:
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(scanned / 1e9)) if scanned else "never"
        )
        lines.append(f"root: {os.fsdecode(path)} ({count} files, scanned {when})")
    lines.append(
        f"{counts['files']} files, {counts['contents']} distinct pictures, "
        f"{counts['unreadable']} unreadable, {counts['failed']} failed taggings"
    )
    lines += [f"failed: {os.fsdecode(p)}: {e}" for p, e in failed]
    ctx.stdout.write("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    return 0
