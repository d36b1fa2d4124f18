"""How a run reads while it works: the scan's progress line on stderr, drawn by tqdm
only when stderr is a terminal, and the tally of pictures tagged that watch's lines share.

    1,234/5,000 pictures, 12.3/s, ETA 05:40, tagged 1,200 (wd3 1,200, caformer 1,180)

Pictures settled (tagged, failed, or found to need nothing) of those known to need work:
the files to read once the walk is done, then the contents a model has no result for.
tqdm keeps the rate and the time left, throttles redraws, and cuts the line to the
terminal's width at every redraw, so it never wraps. Log messages go through tqdm while
the line is up: it is cleared, the message printed, and the line drawn again under it.
`done` leaves the final state (the time taken instead of the time left) on a line of
its own, so the summary comes after it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextlib import ExitStack
from typing import Any, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from indexer.core.records import Counts, Headway
from indexer.wording import plural

log = logging.getLogger("dtindex")
LINE = "{n:,}/{total:,} pictures, {speed}, ETA {remaining}{postfix}"
FINAL = "{n:,}/{total:,} pictures in {elapsed}, {speed}{postfix}"


class _Line(tqdm):  # type: ignore[type-arg]
    monitor_interval = 0  # no monitor thread: every redraw comes with an update

    @property
    def format_dict(self) -> MutableMapping[str, Any]:
        """tqdm's values, and the rate as people read it (`12.3/s`, not `12.30it/s`)."""
        values = super().format_dict
        rate = values["rate"] or (values["n"] / values["elapsed"] if values["elapsed"] else 0)
        values["speed"] = f"{rate:.1f}/s" if rate else "?/s"
        return values


def tally(counts: Counts, headway: Headway) -> str:
    """Pictures tagged, per model where there are several, and failures."""
    text = f"tagged {counts.tagged:,}"
    if len(headway.by_model) > 1:
        text += f" ({', '.join(f'{m} {n:,}' for m, n in headway.by_model.items())})"
    if counts.failed:
        text += f", {counts.failed:,} failed"
    return text


def changes(counts: Counts) -> str:
    """What became of files, in files: `2 new files, 1 file moved`; empty where none
    changed. A move is one file, though its events name two paths."""
    words = [
        plural(counts.new, "new file"),
        plural(counts.changed, "changed file"),
        plural(counts.moved, "file") + " moved",
        plural(counts.removed, "file") + " removed",
    ]
    done = [counts.new, counts.changed, counts.moved, counts.removed]
    return ", ".join(text for text, n in zip(words, done, strict=True) if n)


class Progress:
    """A `Listener` for `scan_roots`; a context manager that routes log messages around
    the line while it is up."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled, self.stream = enabled, stream or sys.stderr
        self._line: _Line | None = None
        self._routing = ExitStack()

    def __enter__(self) -> Progress:
        if self.enabled:
            self._routing.enter_context(logging_redirect_tqdm([log], tqdm_class=_Line))
        return self

    def __exit__(self, *exc: object) -> None:
        self.done()
        self._routing.close()

    def update(self, counts: Counts, headway: Headway) -> None:
        if not self.enabled or (self._line is None and not headway.known):
            return  # nothing to do (an unchanged rescan): no line at all
        if self._line is None:
            self._line = _Line(file=self.stream, bar_format=LINE, dynamic_ncols=True, total=0)
        line = self._line
        line.total = max(headway.known, headway.settled)
        line.set_postfix_str(tally(counts, headway), refresh=False)
        line.update(headway.settled - line.n)

    def done(self) -> None:
        """Draw the final state and leave it; later messages go below it."""
        if self._line is not None:
            self._line.bar_format = FINAL
            self._line.close()
            self._line = None
