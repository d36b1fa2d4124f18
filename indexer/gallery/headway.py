"""How far a scan has come, for whoever follows it (the CLI's progress line).

Pictures are counted, not model results: a picture is tagged at its first result, and
settled (done with, for this run) once every model it was given to answered, or at once
when it needs nothing (an unchanged content, a second name of a content, work another
process holds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from indexer.gallery.jobs import Counts


@dataclass
class Headway:
    """The pictures known to need work (files to read, then contents a model has no
    result for), those settled, and the results of each model."""

    known: int = 0
    settled: int = 0
    by_model: dict[str, int] = field(default_factory=dict)


class Listener(Protocol):
    """Who follows a scan as it runs."""

    def update(self, counts: Counts, headway: Headway) -> None:
        """Something moved: called per group of files recorded and per batch tagged."""

    def done(self) -> None:
        """The work is over; what is said next is the summary."""


class Silent:
    def update(self, counts: Counts, headway: Headway) -> None:
        pass

    def done(self) -> None:
        pass


@dataclass
class _Open:
    """A content given to models: results still to come, the jobs settled once they
    have, and whether one was a result (then the picture counts as tagged)."""

    results: int
    jobs: int = 1
    scored: bool = False


class Ledger:
    """One run's accounting: `counts.tagged` and the headway, from the work given out
    and the results (or failures) that came back."""

    def __init__(self, counts: Counts, models: Iterable[str], known: int) -> None:
        self.counts = counts
        self.headway = Headway(known, by_model=dict.fromkeys(models, 0))
        self._open: dict[int, _Open] = {}

    def settled(self) -> None:
        """A job that ends before any model is given its picture (not looked at)."""
        self.headway.settled += 1

    def given(self, content_id: int, results: int) -> None:
        """A job's content was given to `results` models (none: the job is settled)."""
        if not results:
            self.headway.settled += 1
        elif content_id in self._open:  # a second name of a content, for another model
            self._open[content_id].results += results
            self._open[content_id].jobs += 1
        else:
            self._open[content_id] = _Open(results)

    def scored(self, model: str, content_ids: list[int]) -> None:
        self.headway.by_model[model] = self.headway.by_model.get(model, 0) + len(content_ids)
        for content_id in content_ids:
            self.came(content_id, 1, scored=True)

    def came(self, content_id: int, results: int, scored: bool = False) -> None:
        """`results` of a content's models came in: scores, or failures."""
        entry = self._open.get(content_id)
        if entry is None:
            self.counts.tagged += scored
            return
        if scored and not entry.scored:
            entry.scored = True
            self.counts.tagged += 1
        entry.results -= results
        if entry.results <= 0:
            del self._open[content_id]
            self.headway.settled += entry.jobs
