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
    """--exclude, --replace and --limit, applied after the thresholds, to the tags as the
    model names them (`names` lists those, for the caller to check against the model)."""

    def __init__(self, exclude: Iterable[str], replace: Iterable[str], limit: int | None) -> None:
        names = (t.strip() for item in exclude for t in item.split(","))
        self.exclude = dict.fromkeys(t for t in names if t)  # a set in the order given
        self.replace = dict(_replacement(item) for item in replace)
        if limit is not None and limit < 1:
            raise UsageError("--limit must be at least 1")
        self.limit = limit

    def names(self) -> list[tuple[str, str]]:
        """Each tag named by an edit, with its option: `("--exclude", "solo")`."""
        named = [("--exclude", t) for t in self.exclude]
        return named + [("--replace", old) for old in self.replace]

    def apply(self, tags: list[Scored]) -> list[Scored]:
        kept = [t for t in tags if t.tag not in self.exclude]
        if self.replace:
            kept = _merged(
                Scored(self.replace.get(t.tag, t.tag), t.category, t.score, t.threshold)
                for t in kept
            )
        if self.limit is not None and len(kept) > self.limit:
            best = set(sorted(range(len(kept)), key=lambda i: -kept[i].score)[: self.limit])
            kept = [t for i, t in enumerate(kept) if i in best]
        return kept


def _replacement(item: str) -> tuple[str, str]:
    """`--replace OLD=NEW` as (OLD, NEW). NEW is a tag like the model's: text, without the
    tab or line break that would break a line of the tsv (or a caption, a Hydrus file)."""
    old, sep, new = item.partition("=")
    if not sep or not old or not new:
        raise UsageError(f"--replace {item!r} must be OLD=NEW")
    if any(c in new for c in "\t\n\r"):
        raise UsageError(f"--replace {item!r}: a tag cannot hold a tab or line break")
    if _undecodable(new):
        raise UsageError(f"--replace {item!r}: the new tag is not UTF-8 text")
    return old, new


def _undecodable(text: str) -> bool:
    """Whether `text` holds bytes the command line could not decode (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _merged(tags: Iterable[Scored]) -> list[Scored]:
    """One of each tag name, the highest-scoring, where the first was: a tag renamed onto
    one the picture already has (synonyms merged by --replace) is one tag in every format,
    never a duplicate (sha1, tag) line that `gallery tag` would import twice."""
    best: dict[str, Scored] = {}
    for tag in tags:
        had = best.get(tag.tag)
        if had is None or tag.score > had.score:
            best[tag.tag] = tag
    return list(best.values())


def pictures(rows: Iterator[Row], rules: Thresholds, edits: Edits) -> Iterator[Picture]:
    """Each picture (rows come grouped by content) with the tags it exports; a picture
    none of whose tags pass is left out."""
    for content_id, group in groupby(rows, key=lambda r: r.content_id):
        items = list(group)
        scored = [Scored(r.tag, r.category, r.score, r.threshold) for r in items]
        chosen = edits.apply(select(scored, rules))
        if chosen:
            yield content_id, items[0].sha1, chosen
