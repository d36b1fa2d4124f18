"""`dtindex status`: the roots, what the index holds, and which pictures failed and why.

Each failure is listed once per picture and reason, with its kind (whether the next scan
retries it: see `indexer.errors.Kind`) and the model versions it failed for.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from indexer.cli.options import Context
from indexer.errors import Kind
from indexer.store.engine import open_index
from indexer.store.location import shown
from indexer.store.queries import FailureRow, failures, roots_summary, totals
from indexer.wording import plural

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
    db = ctx.database()
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
            "database": shown(db),
            "roots": [{"path": os.fsdecode(p), "files": n, "scanned_ns": s} for p, s, n in roots],
            **counts,
            "failures": [
                {"path": os.fsdecode(f.path), "error": f.error, "kind": f.kind, "models": f.models}
                for f in failed
            ],
        }
        ctx.stdout.write(json.dumps(record).encode() + b"\n")
        return 0
    lines = [f"index: {shown(db)}"]
    for path, scanned, count in roots:
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(scanned / 1e9)) if scanned else "never"
        )
        lines.append(f"root: {os.fsdecode(path)} ({plural(count, 'file')}, scanned {when})")
    lines.append(
        f"{plural(counts['files'], 'file')}, {plural(counts['contents'], 'distinct picture')}, "
        f"{counts['unreadable']} unreadable, {plural(counts['failed'], 'failed tagging')}"
    )
    lines += [_failure_line(f) for f in failed]
    ctx.stdout.write("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    return 0


def _failure_line(failure: FailureRow) -> str:
    """`failed: PATH: REASON [kind, retried; model version, ...]`."""
    kind = failure.kind
    known = kind in {k.value for k in Kind}
    if known and Kind(kind).retried:
        kind += ", retried by the next scan"
    where = f"; {', '.join(failure.models)}" if failure.models else "; reading the file"
    return f"failed: {os.fsdecode(failure.path)}: {failure.error} [{kind}{where}]"
