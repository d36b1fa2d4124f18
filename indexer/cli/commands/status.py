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
from indexer.core.records import FailureRow, Status
from indexer.errors import Kind
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
    with ctx.index() as index:
        found = index.status(args.failures)
    if args.json:
        record = {**_record(found), "config": ctx.config_file()}
        ctx.stdout.write(json.dumps(record).encode() + b"\n")
        return 0
    lines = [f"index: {found.database}", f"config: {ctx.config_shown()}"]
    for root in found.roots:
        scanned = root.scanned_ns
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(scanned / 1e9)) if scanned else "never"
        )
        lines.append(
            f"root: {os.fsdecode(root.path)} ({plural(root.files, 'file')}, scanned {when})"
        )
    lines += _count_lines(found)
    lines += [_failure_line(f, found.configured) for f in found.failures]
    if found.more_failures:
        lines.append(f"more failures than the {args.failures} listed: --failures N lists more")
    ctx.stdout.write("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    return 0


def _record(found: Status) -> dict[str, object]:
    """The object `--json` prints."""
    return {
        "database": found.database,
        "roots": [
            {"path": os.fsdecode(r.path), "files": r.files, "scanned_ns": r.scanned_ns}
            for r in found.roots
        ],
        "files": found.files,
        "contents": found.contents,
        "unreadable": found.unreadable,
        "failed": found.failed,
        "failed_by_model": dict(found.failed_by_model),
        "failed_unconfigured": dict(found.failed_unconfigured),
        "failures": [
            {"path": os.fsdecode(f.path), "error": f.error, "kind": f.kind, "models": f.models}
            for f in found.failures
        ],
        "more_failures": found.more_failures,
    }


def _count_lines(found: Status) -> list[str]:
    """The counts, each saying what it counts."""
    lines = [
        f"{plural(found.files, 'file')}, {plural(found.contents, 'distinct picture')} "
        "(identical files are one picture)",
        f"{plural(found.unreadable, 'file')} could not be read "
        "(no bytes to hash: permissions, I/O)",
    ]
    models = ", ".join(f"{model} {n}" for model, n in sorted(found.failed_by_model.items()))
    if found.failed:
        lines.append(f"{plural(found.failed, 'picture')} failed with a configured model: {models}")
    else:
        lines.append("no picture failed with a configured model (`dtindex models` says what is "
                     "still to tag)")  # fmt: skip
    for model, count in sorted(found.failed_unconfigured.items()):
        lines.append(f"not configured any more: {model} failed on {plural(count, 'picture')}")
    return lines


def _failure_line(failure: FailureRow, configured: frozenset[str]) -> str:
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
