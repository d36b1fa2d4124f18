"""Which earlier failures a run tries again: the rule, written once (see `errors.Kind`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from indexer.errors import Kind
from indexer.store.schema import taggings


@dataclass(frozen=True)
class Attempt:
    """One run's view of earlier failures: which `taggings` rows leave nothing to do.

    A result; a failure recorded during this run (from `since_ns` on: never retried
    within it); and, unless `retry_all`, a failure that was the picture's own fault or
    that needs more pixels than `max_pixels` allows. Every other failure is tried again
    (`errors.Kind`). The one definition, used by the reads, the pending pass and claims.
    """

    since_ns: int
    retry_all: bool = False
    max_pixels: int = 0

    def settled(self) -> ColumnElement[bool]:
        kept = taggings.c.tagged_ns >= self.since_ns
        if not self.retry_all:
            over = (taggings.c.kind == Kind.LIMIT.value) & (taggings.c.needs > self.max_pixels)
            kept = kept | (taggings.c.kind == Kind.PICTURE.value) | over
        return (taggings.c.status == "done") | ((taggings.c.status == "failed") & kept)


# Every failure, of any kind and time, leaves nothing to do: only what was never tried
# is. A watch's batch tags that much for the contents it moved or found gone; their old
# failures wait for a rescan, as a renamed folder of undecodable files is no reason to
# decode them all again.
UNTRIED = Attempt(since_ns=0)
