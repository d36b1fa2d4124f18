"""`dtindex model check`: a configured model run as fp32 and as each copy dtindex can
make of its graph (int8, fp16) on the same pictures, prepared once as a scan prepares
them, and how far each copy's decisions, leading tags and scores are from fp32's.

Only the user's own weights and pictures can answer whether a copy is good enough: how
far int8 moves the scores depends on the ranges of the real weights."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexer.config import Config, threshold_or_default
from indexer.core.choosing import batch_size, threshold_value
from indexer.core.tagging import expand_pictures
from indexer.errors import DecodeError, Failure, UsageError
from indexer.imaging.messages import DecodeInto, Skipped, Target
from indexer.imaging.workers import DecoderPool
from indexer.models.agreement import Agreement, Run, agreement, timed_run
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.models.variants import VARIANTS_BY_NAME, unavailable
from indexer.wording import plural

__all__ = ["Agreement", "Checked", "Copy", "Run", "check_copies"]
log = logging.getLogger("dtindex")


@dataclass(frozen=True)
class Copy:
    """One copy's run (`fp32` first, with no agreement: it is the reference)."""

    name: str
    run: Run
    agreement: Agreement | None


@dataclass(frozen=True)
class Checked:
    """The check of `model`: `pictures` run (`skipped`: could not be read), its `tags`,
    the `threshold` decisions are counted at, and each copy, fp32 first."""

    model: str
    pictures: int
    skipped: int
    tags: int
    threshold: float
    copies: tuple[Copy, ...]


def check_copies(
    name: str,
    pictures: Sequence[str],
    config: Config,
    runtime: RuntimeOptions,
    threshold: float | None = None,
    limit: int = 200,
    batch: int | None = None,
) -> Checked:
    """Run the configured model `name` and its copies on (at most `limit` of) `pictures`
    (a folder: those under it), in batches of `batch`; a copy that cannot be made here
    is named on stderr and skipped."""
    definition = dataclasses.replace(config.model(name).resolve(), variant="")
    limit_at = threshold_value(threshold, threshold_or_default(definition.threshold))
    if limit < 1:
        raise UsageError(f"--limit {limit} must be at least 1")
    size = batch_size(batch, config)
    copies = []
    for kind in VARIANTS_BY_NAME:
        reason = unavailable(kind)
        if reason is None:
            copies.append(kind)
        else:
            log.warning("%s: skipped (%s)", kind, reason)
    if not copies:
        raise UsageError(f"{name}: no copy of the graph can be made here to compare")
    reference = load(definition, runtime)
    batches, skipped = _prepared(pictures, config, reference, limit, size)
    count = sum(len(batch) for batch in batches)
    log.info("%s: running fp32 on %s", name, plural(count, "picture"))
    base = timed_run(reference, batches)
    rows = [Copy("fp32", base, None)]
    for kind in copies:
        tagger = load(dataclasses.replace(definition, variant=kind), runtime)
        log.info("%s: running %s on %s", name, kind, plural(count, "picture"))
        result = timed_run(tagger, batches)
        rows.append(Copy(kind, result, agreement(base, result, limit_at)))
    return Checked(name, count, skipped, len(reference.tags), limit_at, tuple(rows))


def _prepared(
    names: Sequence[str], config: Config, tagger: Tagger, limit: int, size: int
) -> tuple[list[NDArray[np.float32]], int]:
    """The pictures decoded and prepared once, as the scan does, in batches of `--batch`
    (a batch may come out shorter), and how many could not be read: a sample of a real
    gallery almost always holds one, named and left out as `tag` does."""
    paths: list[str] = []
    for path in expand_pictures(names, config.scan.extensions):
        if len(paths) == limit:
            log.warning("using the first %s (--limit)", plural(limit, "picture"))
            break
        paths.append(path)
    if not paths:
        raise UsageError(f"no pictures in {', '.join(names)}")
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
        raise DecodeError(f"no picture could be read in {', '.join(names)}")
    if skipped:
        log.warning("skipped %s that could not be read", plural(skipped, "picture"))
    return batches, skipped
