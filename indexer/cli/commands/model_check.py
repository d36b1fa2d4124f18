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
import dataclasses
import logging
import os

import numpy as np
from numpy.typing import NDArray

from indexer.cli.options import (
    Context,
    add_runtime_arguments,
    batch_size,
    expand_pictures,
    runtime_options,
    threshold_value,
)
from indexer.config import threshold_or_default
from indexer.errors import DecodeError, Failure, UsageError
from indexer.imaging.messages import DecodeInto, Skipped, Target
from indexer.imaging.workers import DecoderPool
from indexer.models.agreement import Agreement, Run, agreement, timed_run
from indexer.models.runtime import Tagger, load
from indexer.models.variants import VARIANTS_BY_NAME, unavailable
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
    definition = dataclasses.replace(ctx.config.model(args.name).resolve(), variant="")
    threshold = threshold_value(args.threshold, threshold_or_default(definition.threshold))
    options = runtime_options(args, ctx.config, ctx.env)
    copies = []
    for name in VARIANTS_BY_NAME:
        reason = unavailable(name)
        if reason is None:
            copies.append(name)
        else:
            log.warning("%s: skipped (%s)", name, reason)
    if not copies:
        raise UsageError(f"{args.name}: no copy of the graph can be made here to compare")
    reference = load(definition, options)
    batches, skipped = _prepared(args, ctx, reference)
    count = sum(len(batch) for batch in batches)
    log.info("%s: running fp32 on %s", args.name, plural(count, "picture"))
    base = timed_run(reference, batches)
    rows: list[tuple[str, Run, Agreement | None]] = [("fp32", base, None)]
    for name in copies:
        tagger = load(dataclasses.replace(definition, variant=name), options)
        log.info("%s: running %s on %s", args.name, name, plural(count, "picture"))
        result = timed_run(tagger, batches)
        rows.append((name, result, agreement(base, result, threshold)))
    heading = (
        f"{args.name}: {plural(count, 'picture')}, {plural(len(reference.tags), 'tag')}, "
        f"threshold {threshold:g} ({plural(base.scores.size, 'decision')})\n"
    )
    ctx.stdout.write((heading + _table(rows)).encode())
    ctx.stdout.flush()
    return 1 if skipped else 0


def _prepared(
    args: argparse.Namespace, ctx: Context, tagger: Tagger
) -> tuple[list[NDArray[np.float32]], int]:
    """The pictures decoded and prepared once, as the scan does, in batches of `--batch`
    (a batch may come out shorter), and how many could not be read: a sample of a real
    gallery almost always holds one, named and left out as `tag` does."""
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} must be at least 1")
    paths: list[str] = []
    for path in expand_pictures(args.pictures, ctx.config.scan.extensions):
        if len(paths) == args.limit:
            log.warning("using the first %s (--limit)", plural(args.limit, "picture"))
            break
        paths.append(path)
    if not paths:
        raise UsageError(f"no pictures in {', '.join(args.pictures)}")
    size = batch_size(args, ctx.config)
    config = ctx.config
    batches, skipped = [], 0
    with DecoderPool(config.decoders or 1, config.max_pixels, config.decode_timeout) as pool:
        ring = pool.ring("check", tagger.picture_shape, size, 1)
        target = Target(tagger.spec, tagger.height, tagger.width)
        for first in range(0, len(paths), size):
            chunk = paths[first : first + size]
            requests = [
                (DecodeInto.of(os.fsencode(path), None, [(target, ring.address(slot))]), slot)
                for slot, path in enumerate(chunk)
            ]
            read = set(range(len(chunk)))
            for slot, reply in pool.answer_all(requests):
                if isinstance(reply, Failure | Skipped):
                    log.error("%s: %s", chunk[slot], reply.reason)  # as `tag` names it
                    read.discard(slot)
                    skipped += 1
            if read:
                batches.append(ring.view(0, len(chunk))[sorted(read)].copy())
    if not batches:
        raise DecodeError(f"no picture could be read in {', '.join(args.pictures)}")
    if skipped:
        log.warning("skipped %s that could not be read", plural(skipped, "picture"))
    return batches, skipped


def _table(rows: list[tuple[str, Run, Agreement | None]]) -> str:
    top = next((a.top for _, _, a in rows if a is not None), 20)
    lines = [
        f"{'copy':<6}{'flipped':>9}{f'top-{top}':>9}{'max diff':>11}{'pictures/s':>12}  vs fp32"
    ]
    speed = rows[0][1].pictures_per_s
    for name, result, found in rows:
        ratio = f"{result.pictures_per_s / speed:.2f}x"
        if found is None:
            cells = f"{'-':>9}{'-':>9}{'-':>11}"
        else:
            cells = f"{found.flipped:>9}{found.top_overlap:>9.3f}{found.max_difference:>11.2e}"
        lines.append(f"{name:<6}{cells}{result.pictures_per_s:>12.2f}  {ratio}")
    return "\n".join(lines) + "\n"
