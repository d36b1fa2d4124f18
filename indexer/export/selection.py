"""What an export yields per picture: its tags through the thresholds, then the user's
edits (`--exclude`, `--replace`, `--limit`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby

from indexer.errors import UsageError
from indexer.export.thresholds import Scored, Thresholds, select
from indexer.store.queries import Row

Picture = tuple[int, str, list[Scored]]  # content id, SHA-1, tags


class Edits:
    """--exclude, --replace and --limit, applied after the thresholds."""

    def __init__(self, exclude: Iterable[str], replace: Iterable[str], limit: int | None) -> None:
        self.exclude = {t.strip() for item in exclude for t in item.split(",") if t.strip()}
        self.replace = {}
        for item in replace:
            old, sep, new = item.partition("=")
            if not sep or not old or not new or "\t" in new or "\n" in new:
                raise UsageError(f"--replace {item!r} must be OLD=NEW")
            self.replace[old] = new
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1")
        self.limit = limit

    def apply(self, tags: list[Scored]) -> list[Scored]:
        kept = [
            Scored(self.replace.get(t.tag, t.tag), t.category, t.score, t.threshold)
            for t in tags
            if t.tag not in self.exclude
        ]
        if self.limit is not None and len(kept) > self.limit:
            best = set(sorted(range(len(kept)), key=lambda i: -kept[i].score)[: self.limit])
            kept = [t for i, t in enumerate(kept) if i in best]
        return kept


def pictures(rows: Iterator[Row], rules: Thresholds, edits: Edits) -> Iterator[Picture]:
    """Each picture (rows come grouped by content) with the tags it exports; a picture
    none of whose tags pass is left out."""
    for content_id, group in groupby(rows, key=lambda r: r.content_id):
        items = list(group)
        scored = [Scored(r.tag, r.category, r.score, r.threshold) for r in items]
        chosen = edits.apply(select(scored, rules))
        if chosen:
            yield content_id, items[0].sha1, chosen
