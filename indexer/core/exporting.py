"""`Index.export` and `Index.write_files`: the stored tags that pass the thresholds, per
picture, as records or into files beside the pictures (or mirrored under a folder)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection

from indexer.config import Config
from indexer.core import choosing
from indexer.core.records import Exported, Rules
from indexer.errors import UsageError
from indexer.export.files import Written, namer, sidecar_format, write_sidecars
from indexer.export.ownership import Ownership
from indexer.export.selection import Edits, pictures
from indexer.export.thresholds import Thresholds
from indexer.imaging.sniff import Pictures
from indexer.store.queries import (
    all_paths,
    categories,
    paths_by_content,
    scored,
    tagged_contents,
    versions,
)
from indexer.store.search import tag_names

FILES = ("captions", "xmp", "hydrus")  # a file per picture
NO_EDITS = Edits((), (), None)


@dataclass(frozen=True)
class ExportPlan:
    """What an export prints: `model`'s results (`current`: its configured version)
    recorded at or after `since` (ns), the tags that pass `thresholds`."""

    model: str
    current: str | None
    thresholds: Thresholds
    since: int | None


def plan(
    conn: Connection,
    config: Config,
    asked: str | None,
    rules: Rules,
    since: int | None,
    current: Callable[[str], str | None],
    edits: Edits,
) -> ExportPlan:
    """The model asked for (else the only one indexed), its thresholds, and the tags
    `edits` name (each a tag of the model's: a misspelt one would edit nothing), checked
    before anything is printed or written."""
    model = choosing.indexed_model((m for m, _, _, _ in versions(conn)), asked)
    named = edits.names()
    if named:
        known = tag_names(conn, model)
        for option, tag in named:
            choosing.check_names(model, known, [tag], option)
    limits = choosing.thresholds(config, model, rules, categories(conn, model))
    return ExportPlan(model, current(model), limits, since)


def records(
    conn: Connection, chosen: ExportPlan, edits: Edits, with_paths: bool
) -> Iterator[Exported]:
    """Each picture with a tag that passes, by SHA-1; `with_paths`: with its files
    (reading every file's path first, which a sha1-only export does without)."""
    rows = scored(conn, chosen.model, chosen.current, chosen.thresholds.floor(), chosen.since)
    paths = paths_by_content(conn) if with_paths else {}
    for content_id, sha1, tags in pictures(rows, chosen.thresholds, edits):
        files = paths.get(content_id, [])
        yield Exported(
            content_id,
            sha1,
            tuple(path for path, _ in files),
            tuple(tags),
            tuple(root for _, root in files),
        )


def write(
    conn: Connection,
    chosen: ExportPlan,
    edits: Edits,
    fmt: str,
    out: str | None,
    levels: tuple[str, ...],
    replace_existing: bool,
    extensions: Collection[str],
) -> Written:
    """Write `fmt` files beside each picture (`out` None) or mirrored under `out`;
    `extensions` are the scan's, so files left over are told by the scanner's rule of
    which files are pictures."""
    if fmt not in FILES:
        raise UsageError(f"{fmt!r} is not a file format ({', '.join(FILES)})")
    rows = scored(conn, chosen.model, chosen.current, chosen.thresholds.floor(), chosen.since)
    items = pictures(rows, chosen.thresholds, edits)
    paths = paths_by_content(conn)
    kind = sidecar_format(fmt, chosen.model, levels)
    where = namer(kind, out, paths, lambda: all_paths(conn))
    tagged = tagged_contents(conn, chosen.model, chosen.current, chosen.since)
    owner = Ownership(fmt, out is None, replace_existing)
    full = chosen.since is None  # every picture's file: leftovers can be told
    listing = Pictures(extensions) if full else None
    return write_sidecars(kind, items, tagged, paths, where, owner, listing)
