"""A scan that finds pictures claimed by another live process waits for their results.

Claims keep two writers from tagging one picture twice, so a scan beside `watch` or
another scan skips what the other holds. Exit 0 says the index is complete, so the scan
may not end there: it waits until each such picture has its result, and takes over the
claims of an owner that died meanwhile (its `flock` is gone: `store.owners`) and tags
them itself. Waiting was chosen over exit 1 because the other process is tagging those
very pictures: a cron scan beside `watch` then ends complete, a little later, instead
of failing every time the two meet. An owner whose life cannot be judged (its lock file
out of reach) is not waited on for its hour-long lease: its pictures count as
`to_retry` (exit 1), as do pictures the other process failed for a retried reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from indexer.gallery.jobs import Counts
from indexer.store.claims import failed_again, held_elsewhere
from indexer.store.owners import Owner
from indexer.store.records import Records
from indexer.store.retry import Attempt
from indexer.wording import plural

log = logging.getLogger("dtindex")
LOOK_EVERY_S = 0.25  # how often the claims table is read again while waiting


def wait_for_others(
    index: Records,
    version_ids: Sequence[int],
    owner: Owner,
    attempt: Attempt,
    counts: Counts,
    tag_pending: Callable[[], None],
    stop: threading.Event | None,
) -> None:
    """Return once no picture `attempt` wants is held by another process that lives.

    `tag_pending` tags what is missing (claims of dead owners are taken over there).
    """
    waited: set[tuple[int, int]] = set()
    shown = 0
    while stop is None or not stop.is_set():
        held = held_elsewhere(index, version_ids, owner, attempt)
        if held.takeable:
            tag_pending()
        elif not held.live:
            _count_unfinished(index, held.unknown, waited, counts)
            return
        waited = (waited - held.takeable) | held.live  # taken over: our own failures count
        if held.live and len(held.live) != shown:
            shown = len(held.live)
            log.info(
                "waiting for %s that another dtindex process is tagging",
                plural(len({content for _, content in held.live}), "picture"),
            )
        if stop is not None:
            stop.wait(LOOK_EVERY_S)
        else:
            time.sleep(LOOK_EVERY_S)


def _count_unfinished(
    index: Records,
    unknown: set[tuple[int, int]],
    waited: set[tuple[int, int]],
    counts: Counts,
) -> None:
    """Pictures the scan cannot call complete: the next scan retries them (exit 1)."""
    if unknown:
        pictures = len({content for _, content in unknown})
        log.warning(
            "%s claimed by a process whose life cannot be told (its lock file is out of "
            "reach); left for the next scan",
            plural(pictures, "picture"),
        )
        counts.to_retry += pictures
    failed = failed_again(index, waited) if waited else set()
    if failed:
        pictures = len({content for _, content in failed})
        log.warning(
            "%s failed in another dtindex process; the next scan retries",
            plural(pictures, "picture"),
        )
        counts.failed += pictures
        counts.to_retry += pictures
