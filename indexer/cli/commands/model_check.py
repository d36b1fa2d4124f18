"""`dtindex model check NAME PICTURES...`: is an int8 (or fp16) copy good enough here?

Runs the configured model NAME as fp32 and as each copy dtindex can make of its graph
(those of `int8 = true` and `fp16 = true`; both need the onnx package, and a copy that
cannot be made is named on stderr and skipped), on the same pictures, prepared once as a
scan prepares them (a file that cannot be read is named on stderr and left out, and the
check exits 1). It prints one row per copy:

  flipped     (picture, tag) decisions that differ from fp32's at the model's threshold
              (`-t`; default the model's own, else 0.1), out of pictures x tags
  top-20      mean over pictures of how many of fp32's 20 highest-scoring tags are also
              among the copy's 20 highest, divided by 20 (1.000: the same tags lead)
  max diff    the largest absolute difference of any score from fp32's
  pictures/s  inference alone (pictures already decoded and prepared; one batch is run
              first, untimed), and the ratio to fp32 (above 1.00x: faster)

Only your own weights and pictures can answer the question: how far int8 moves the
scores depends on the ranges of the real weights, so a random-weight replica (as in
dtindex's benchmarks) cannot tell whether int8 is good enough for a real model. A few
dozen typical pictures are enough; timings from a handful are rough, and int8 gains
speed only on CPUs with VNNI (x86-64) or dot-product (ARM) instructions. Copies are
converted once and kept in the cache folder, so `int8 = true` later starts at once.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from indexer.cli.options import Context, add_runtime_arguments, runtime_options
from indexer.core.checking import Copy, check_copies
from indexer.wording import plural

log = logging.getLogger("dtindex")
LIMIT = 200  # pictures, all held prepared in memory (a 448x448 input: 2.4 MB each)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="a model name from the config")
    parser.add_argument(
        "pictures", nargs="+", metavar="PICTURE", help="pictures; a folder means those under it"
    )
    parser.add_argument(
        "-t",
        "--threshold",
        type=float,
        metavar="T",
        help="the threshold decisions are counted at (default: the model's, else 0.1)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=LIMIT,
        metavar="N",
        help=f"use at most the first N pictures (default {LIMIT})",
    )
    add_runtime_arguments(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    checked = check_copies(
        args.name, args.pictures, ctx.config, runtime_options(args, ctx.config, ctx.env),
        args.threshold, args.limit, args.batch,
    )  # fmt: skip
    decisions = checked.copies[0].run.scores.size
    heading = (
        f"{checked.model}: {plural(checked.pictures, 'picture')}, "
        f"{plural(checked.tags, 'tag')}, threshold {checked.threshold:g} "
        f"({plural(decisions, 'decision')})\n"
    )
    ctx.stdout.write((heading + _table(checked.copies)).encode())
    ctx.stdout.flush()
    return 1 if checked.skipped else 0


def _table(rows: Sequence[Copy]) -> str:
    top = next((row.agreement.top for row in rows if row.agreement is not None), 20)
    lines = [
        f"{'copy':<6}{'flipped':>9}{f'top-{top}':>9}{'max diff':>11}{'pictures/s':>12}  vs fp32"
    ]
    speed = rows[0].run.pictures_per_s
    for name, result, found in ((row.name, row.run, row.agreement) for row in rows):
        ratio = f"{result.pictures_per_s / speed:.2f}x"
        if found is None:
            cells = f"{'-':>9}{'-':>9}{'-':>11}"
        else:
            cells = f"{found.flipped:>9}{found.top_overlap:>9.3f}{found.max_difference:>11.2e}"
        lines.append(f"{name:<6}{cells}{result.pictures_per_s:>12.2f}  {ratio}")
    return "\n".join(lines) + "\n"
