"""`dtindex status`: the roots, what the index holds, and which pictures failed and why.

The counts: files in the roots; distinct pictures among them (identical files are one
picture); files that could not be read at all (no bytes to hash: permissions, I/O; a
scan tries them again); pictures with no result of a configured model because it failed
on them, per model. Models the config no longer names are counted apart, as they will
not run again. Each failure is listed once per picture and reason, with its kind
(whether the next scan retries it: see `indexer.errors.Kind`) and the model versions it
failed for.
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
from indexer.store.queries import FailureRow, failed_pictures, failures, roots_summary, totals
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
            pairs = failed_pictures(conn)
    finally:
        engine.dispose()
    configured = {*ctx.config.models, *(m.name for m in ctx.config.default_models())}
    by_model: dict[str, int] = {}
    apart: dict[str, int] = {}
    for model, _ in pairs:
        counted = by_model if model in configured else apart
        counted[model] = counted.get(model, 0) + 1
    counts["failed"] = len({content for model, content in pairs if model in configured})
    if args.json:
        record = {
            "database": shown(db),
            "roots": [{"path": os.fsdecode(p), "files": n, "scanned_ns": s} for p, s, n in roots],
            **counts,
            "failed_by_model": by_model,
            "failed_unconfigured": apart,
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
    lines += _count_lines(counts, by_model, apart)
    lines += [_failure_line(f, configured) for f in failed]
    ctx.stdout.write("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    return 0


def _count_lines(
    counts: dict[str, int], by_model: dict[str, int], apart: dict[str, int]
) -> list[str]:
    """The counts, each saying what it counts."""
    lines = [
        f"{plural(counts['files'], 'file')}, {plural(counts['contents'], 'distinct picture')} "
        "(identical files are one picture)",
        f"{plural(counts['unreadable'], 'file')} could not be read "
        "(no bytes to hash: permissions, I/O)",
    ]
    models = ", ".join(f"{model} {n}" for model, n in sorted(by_model.items()))
    have, them = ("has", "it") if counts["failed"] == 1 else ("have", "them")
    line = f"{plural(counts['failed'], 'picture')} {have} no result of a configured model"
    lines.append(f"{line}, which failed on {them}: {models}" if models else line)
    for model, count in sorted(apart.items()):
        lines.append(f"not configured any more: {model} failed on {plural(count, 'picture')}")
    return lines


def _failure_line(failure: FailureRow, configured: set[str]) -> str:
    """`failed: PATH: REASON [kind, retried; model version, ...]`."""
    kind = failure.kind
    known = kind in {k.value for k in Kind}
    if known and Kind(kind).retried:
        kind += ", retried by the next scan"
    models = [
        m if m.rsplit(" ", 1)[0] in configured else f"{m} (not configured)" for m in failure.models
    ]
    where = f"; {', '.join(models)}" if models else "; reading the file"
    return f"failed: {os.fsdecode(failure.path)}: {failure.error} [{kind}{where}]"
