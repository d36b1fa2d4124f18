"""An export into files (`dtindex export --format captions|xmp|hydrus`, `Index.write_files`):
a file per picture, and a count of what became of them.

A sidecar that cannot be written (an existing `.xmp` that is not XMP, a folder without
write permission) is named on stderr and left as it is, the others are still written,
and the export exits 1. The summary on stderr says how many files were written, how many
already held the export (left untouched: their times do not change), and how many
pictures got no file because no tag passed the thresholds. Those pictures' XMP sidecars
still lose the tags this model wrote there before, and a file dtindex made for them
(a sidecar it created, a caption still as it wrote it) is removed and counted. A full
export beside the pictures also removes the captions and Hydrus files it left behind
under names no picture has any more (`leftovers` holds the rule), and counts them.
"""

from __future__ import annotations

import errno
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from indexer.errors import SidecarError
from indexer.export import captions, hydrus, leftovers, xmp, xmp_packet
from indexer.export.ownership import Ownership
from indexer.export.selection import Picture
from indexer.export.sidecars import SidecarNamer
from indexer.export.thresholds import Scored
from indexer.export.writing import Outcome, identity
from indexer.imaging.sniff import Pictures
from indexer.wording import plural

log = logging.getLogger("dtindex")

Files = dict[int, list[tuple[bytes, bytes]]]  # content id: (path, root) of each file
Update = Callable[[bytes, list[Scored], Ownership], Outcome]  # what became of a target


@dataclass(frozen=True)
class Written:
    """What became of an export's files: written, already holding the export (left
    untouched), removed (dtindex's own, no tag passing any more), not written (named on
    stderr); pictures that got no file (no tag passed); tags left out because the format
    cannot hold them; files of dtindex's removed as left over (`leftovers`)."""

    written: int
    unchanged: int
    removed: int
    failed: int
    bare: int
    left_out: tuple[str, ...]
    left_over: int = 0

    @property
    def complete(self) -> bool:
        """Every file as the export has it: nothing failed, no tag left out."""
        return not self.failed and not self.left_out


@dataclass(frozen=True)
class SidecarFormat:
    noun: str  # for the summary: "caption file", ...
    suffix: bytes
    update: Update
    keeps_extension: bool  # a.png.xmp, not a.xmp
    merges: bool  # into the user's files (XMP), rather than replacing files of its own
    left_out: set[str] = field(default_factory=set)  # tags the format cannot hold


def sidecar_format(fmt: str, model: str, levels: tuple[str, ...]) -> SidecarFormat:
    if fmt == "xmp":
        kind = SidecarFormat(
            "XMP sidecar",
            xmp.SUFFIX,
            lambda target, tags, _: xmp.merge_sidecar(target, model, _xml_tags(kind, tags), levels),
            keeps_extension=True,
            merges=True,
        )
        return kind
    if fmt == "hydrus":
        return SidecarFormat(
            "Hydrus sidecar",
            hydrus.SUFFIX,
            _whole(hydrus.hydrus_file),
            keeps_extension=True,
            merges=False,
        )
    return SidecarFormat(
        "caption file",
        captions.SUFFIX,
        _whole(captions.caption_file),
        keeps_extension=False,
        merges=False,
    )


def _whole(make: Callable[[list[Scored]], bytes]) -> Update:
    """A whole file of dtindex's, made by `make`: written where there are tags, else
    removed where it still holds what dtindex wrote."""

    def update(target: bytes, tags: list[Scored], owner: Ownership) -> Outcome:
        return owner.replace(target, make(tags)) if tags else owner.discard(target)

    return update


def _xml_tags(kind: SidecarFormat, tags: list[Scored]) -> list[Scored]:
    """`tags` but those holding a character XML 1.0 forbids (a control character from a
    tag list or `--replace`): no XML reader reads a sidecar holding one, so they are left
    out rather than changed into another tag, named once each, and the export exits 1."""
    kept = []
    for tag in tags:
        bad = xmp_packet.forbidden(tag.tag)
        if bad is None:
            kept.append(tag)
        elif tag.tag not in kind.left_out:
            kind.left_out.add(tag.tag)
            log.warning(
                "tag %r holds U+%04X, which XML forbids: left out of the XMP sidecars "
                "(rename it with --replace OLD=NEW, or leave it out with --exclude)",
                tag.tag,
                ord(bad),
            )
    return kept


def namer(
    kind: SidecarFormat, out: str | None, paths: Files, every_path: Callable[[], Iterable[bytes]]
) -> SidecarNamer:
    """Where `kind`'s files go; `every_path` (all indexed files) is read only for
    captions, which need it to know which stems are shared."""
    roots = {root for files in paths.values() for _, root in files}
    folder = os.fsencode(os.path.abspath(out)) if out else None
    shared = None if kind.keeps_extension else every_path()
    return SidecarNamer(folder, roots, kind.suffix, shared)


@dataclass
class _Run:
    """One export's files: their format, where they go, their guard, what became of
    them, and the files written or found up to date."""

    kind: SidecarFormat
    where: SidecarNamer
    owner: Ownership
    counts: Counter[str] = field(default_factory=Counter)
    kept: list[bytes] = field(default_factory=list)
    _needed: set[tuple[int, int]] = field(default_factory=set)
    _counted: int = 0  # of `kept`, those in `_needed`

    def needed(self) -> set[tuple[int, int]]:
        """The files kept so far, links followed (device, inode): one is never removed
        under another name, from any folder, as deduplicating tools (`rdfind
        -makesymlinks`, `jdupes -r -l`) link identical captions across a whole tree."""
        for target in self.kept[self._counted :]:
            found = identity(target)
            if found is not None:
                self._needed.add(found)
        self._counted = len(self.kept)
        return self._needed


def write_sidecars(
    kind: SidecarFormat,
    items: Iterator[Picture],
    tagged: set[int],
    paths: Files,
    where: SidecarNamer,
    owner: Ownership,
    pictures: Pictures | None = None,
) -> Written:
    """Write each picture's sidecars; what became of them. `pictures`, the scanner's rule
    of which files are pictures, given where the export covers every picture (no
    `--changed-since`): beside the pictures it then removes leftovers."""
    run = _Run(kind, where, owner)
    owner.needed = run.needed
    paths = _without_clashes(kind, paths, where, run.counts)
    seen = set()
    try:
        for content_id, _, tags in items:
            seen.add(content_id)
            _write(run, paths.get(content_id, []), tags)
        bare = tagged - seen  # their old files lose this model's tags, or go
        for content_id in sorted(bare):
            _write(run, paths.get(content_id, []), [])
        if pictures is not None and where.out is None and not kind.merges:
            _remove_left_over(run, pictures)
    finally:
        owner.save()
    _report(kind, run.counts, len(bare))
    counts = run.counts
    return Written(
        counts["written"], counts["unchanged"], counts["removed"], counts["failed"], len(bare),
        tuple(sorted(kind.left_out)), counts["left over"],
    )  # fmt: skip


def _remove_left_over(run: _Run, pictures: Pictures) -> None:
    drops = not run.kind.keeps_extension
    owner, suffix = run.owner, run.kind.suffix
    removed, failed = leftovers.remove_left_over(
        owner, run.kept, suffix, drops, pictures, run.needed()
    )
    run.counts["left over"] += removed
    run.counts["failed"] += len(failed)
    for path, exc in failed:
        log.warning("%s: not removed: %s", os.fsdecode(path), exc.strerror or exc)


def _without_clashes(
    kind: SidecarFormat, paths: Files, where: SidecarNamer, counts: Counter[str]
) -> Files:
    """`paths` less the pictures whose file another picture's would be, each such file
    named on stderr: which picture's tags it held would be chance, so it is written for
    neither (the others still are), and the export exits 1."""
    clashes = where.clashes(pair for files in paths.values() for pair in files)
    skipped = set()
    for target, clashing in sorted(clashes.items()):
        counts["failed"] += 1
        skipped.update(clashing)
        *most, last = (os.fsdecode(path) for path in clashing)
        names = f"{', '.join(most)} and {last}"
        where_to = os.fsdecode(target)
        log.warning(
            "%s: the %s of %s at once; written for none of them", where_to, kind.noun, names
        )
    if not skipped:
        return paths
    return {cid: [f for f in files if f[0] not in skipped] for cid, files in paths.items()}


def _write(run: _Run, files: list[tuple[bytes, bytes]], tags: list[Scored]) -> None:
    counts = run.counts
    for path, root in files:
        target = run.where.target(path, root)
        try:
            if tags:  # a file that may only lose tags, or go, needs no folder
                _make_room(run.where, target)
            outcome = run.kind.update(target, tags, run.owner)  # a whole file: never the user's
        except SidecarError as exc:
            counts["failed"] += 1
            log.warning("%s: %s; left untouched", os.fsdecode(target), exc)
            continue
        except OSError as exc:
            counts["failed"] += 1
            log.warning("%s: not written: %s", os.fsdecode(target), exc.strerror or exc)
            continue
        if outcome is Outcome.REMOVED:
            counts["removed"] += 1
        elif outcome:
            counts["written"] += 1
        elif tags:  # a picture without tags and without a sidecar is not "up to date"
            counts["unchanged"] += 1
        if tags:  # written, or found up to date
            run.kept.append(target)


def _make_room(where: SidecarNamer, target: bytes) -> None:
    """Under `--out`, the mirrored folder is made; beside the picture, a missing folder
    means the picture went away since the last scan, and its folder is not made again."""
    folder = os.path.dirname(target) or b"."
    if where.out is not None:
        os.makedirs(folder, exist_ok=True)
    elif not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "the picture's folder is gone (run dtindex scan)")


def _report(kind: SidecarFormat, counts: Counter[str], bare: int) -> None:
    unchanged = f" ({counts['unchanged']} already up to date)" if counts["unchanged"] else ""
    log.info("wrote %s%s", plural(counts["written"], kind.noun), unchanged)
    if bare:
        noun = f"new {kind.noun}" if kind.merges else kind.noun
        log.info("%s got no %s: no tag passed the threshold", plural(bare, "picture"), noun)
    if counts["removed"]:
        made = "made" if kind.merges else "wrote"
        log.info(
            "removed %s that dtindex %s: no tag passes any more",
            plural(counts["removed"], kind.noun),
            made,
        )
    if counts["left over"]:
        log.info(
            "removed %s that dtindex wrote for pictures no longer there, or named otherwise now",
            plural(counts["left over"], kind.noun),
        )
    if counts["failed"]:
        log.warning("%s could not be written", plural(counts["failed"], kind.noun))
