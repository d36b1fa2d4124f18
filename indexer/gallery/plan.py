"""Comparing what is on disk with the index: unchanged, new, changed, moved or gone.

Nothing is read here. `plan_scan` compares whole roots; `plan_paths` compares only the
paths a watcher saw change, with the same rules. A root that is missing, or empty while
the index holds files under it (an unmounted disk looks like that), stops the scan
before anything is removed.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from indexer.config import ScanConfig
from indexer.errors import ScanError
from indexer.gallery.forgotten import forgotten_roots
from indexer.gallery.jobs import Counts, ReadJob, is_moved, is_unchanged
from indexer.gallery.walk import Walk
from indexer.store.queries import files_under
from indexer.store.records import FileRow, Records, Stat
from indexer.wording import plural

Found = dict[bytes, tuple[int, Stat]]


@dataclass
class ScanPlan:
    """What a scan has to do after comparing."""

    reads: list[ReadJob] = field(default_factory=list)
    moves: list[tuple[FileRow, bytes, int]] = field(default_factory=list)
    removals: list[FileRow] = field(default_factory=list)
    root_ids: list[int] = field(default_factory=list)


def check_root(root: Path, held: Callable[[bytes], int] = lambda path: 0) -> bytes:
    """The root's path, where it is a folder; `held`: how many files the index holds
    under a path, which tells a root that went away (an unmounted disk: its files are
    kept) from a path mistyped or never there."""
    path = os.fsencode(os.path.abspath(root))
    if not root.exists():
        kept = held(path)
        if kept:
            raise ScanError(
                f"{root}: root not found (unmounted?); the index holds "
                f"{plural(kept, 'file')} under it, and nothing was removed"
            )
        raise ScanError(f"{root}: no such folder")
    if not root.is_dir():
        raise ScanError(f"{root}: root is not a folder")
    return path


def _classify(
    plan: ScanPlan,
    counts: Counts,
    found: Found,
    known: dict[bytes, FileRow],
    covered: Callable[[bytes], bool],
) -> None:
    new: list[tuple[bytes, int, Stat]] = []
    counts.files += len(found)
    for path, (root_id, stat) in found.items():
        row = known.get(path)
        if row is None:
            new.append((path, root_id, stat))
        elif is_unchanged(row, stat):
            counts.unchanged += 1
        else:
            plan.reads.append(ReadJob(path, root_id, stat, row))
    # A list per stat: the names of a hard-linked file share it, and each must go or move.
    vanished: dict[tuple[int, int, int, int], list[FileRow]] = {}
    for path, row in known.items():
        if path not in found and covered(path):
            vanished.setdefault((row.device, row.inode, row.size, row.mtime_ns), []).append(row)
    for path, root_id, stat in new:
        was = _same_name_first(
            vanished.get((stat.device, stat.inode, stat.size, stat.mtime_ns)), path
        )
        if was is not None and is_moved(was, stat):
            plan.moves.append((was, path, root_id))
        else:  # read: a move only if it holds `was`'s bytes (a freed inode given again)
            plan.reads.append(ReadJob(path, root_id, stat, None, was=was))
    plan.removals = [row for rows in vanished.values() for row in rows]


def _same_name_first(rows: list[FileRow] | None, path: bytes) -> FileRow | None:
    """Take from `rows` the vanished file `path` most likely is: one of its name (a folder
    of hard links renamed), else the first."""
    if not rows:
        return None
    name = os.path.basename(path)
    pick = next((i for i, row in enumerate(rows) if os.path.basename(row.path) == name), 0)
    return rows.pop(pick)


@contextmanager
def _uncollected() -> Iterator[None]:
    """Pause the cyclic garbage collector while a comparison runs.

    A comparison makes a few objects per file (a row, a stat, a pair) and no cycles, and
    each full collection walks every one made so far again: with a million files, the
    collector took a good part of an unchanged rescan's time. All of it is freed by
    reference counts once the comparison returns; only the plan leaves.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def plan_scan(
    index: Records,
    roots: list[Path],
    settings: ScanConfig,
    counts: Counts,
    allow_empty: bool = False,
    held: Mapping[bytes, int] | None = None,
) -> ScanPlan:
    """`held`: the roots (path: id) a running watch holds; their rows are not made anew."""
    with _uncollected():
        return _plan_scan(index, roots, settings, counts, allow_empty, held or {})


def _root_ids(index: Records, paths: list[bytes], held: Mapping[bytes, int]) -> list[int]:
    """Every root's row before any walk: a root forgotten while an earlier one is walked
    is then missing at the end (`scanning`), not made anew behind the forget's back; nor is
    one a watch holds (`held`) forgotten before this pass."""
    ids = []
    for path in paths:
        device = os.stat(path).st_dev
        if path not in held:
            ids.append(index.root_id(path, device))
            continue
        found = index.existing_root_id(path, device)
        if found is None:
            raise forgotten_roots([path])
        ids.append(found)
    return ids


def _plan_scan(
    index: Records,
    roots: list[Path],
    settings: ScanConfig,
    counts: Counts,
    allow_empty: bool,
    held: Mapping[bytes, int],
) -> ScanPlan:
    plan = ScanPlan()
    found: Found = {}
    known: dict[bytes, FileRow] = {}
    walks: list[Walk] = []
    paths = [check_root(root, lambda p: files_under(index.conn, p)) for root in roots]
    ids = _root_ids(index, paths, held)
    for root, path, root_id in zip(roots, paths, ids, strict=True):
        walk = Walk(path, settings)
        rows = index.files_below(path)
        here = {p: (root_id, stat) for p, stat in walk.files(known=rows)}
        if not here and rows and not allow_empty and not walk.unreadable:
            raise ScanError(
                f"{root}: root is empty but the index holds {plural(len(rows), 'file')} under it "
                "(unmounted?); nothing was removed. Use --allow-empty if they were deleted"
            )
        found.update(here)
        known.update(rows)
        walks.append(walk)
        plan.root_ids.append(root_id)
    _classify(plan, counts, found, known, lambda p: all(w.covers(p) for w in walks))
    return plan


@dataclass
class _Seen:
    """What `plan_paths` found on disk and in the index so far."""

    found: Found = field(default_factory=dict)
    known: dict[bytes, FileRow] = field(default_factory=dict)
    walks: list[Walk] = field(default_factory=list)


def plan_paths(
    index: Records,
    paths: Iterable[bytes],
    roots: dict[bytes, int],
    settings: ScanConfig,
    counts: Counts,
) -> ScanPlan:
    """Compare only `paths` (files or folders that changed) with the index, and every
    other name the index has for a file found there: a picture saved through one name of
    a hard link is changed under all of them, and only that one had an event."""
    plan, seen = ScanPlan(), _Seen()
    for path in paths:
        _look(index, path, roots, settings, seen)
    inodes = sorted({(stat.device, stat.inode) for _, stat in seen.found.values()})
    for path in sorted(index.files_sharing(inodes).keys() - seen.found.keys() - seen.known.keys()):
        _look(index, path, roots, settings, seen)
    _classify(plan, counts, seen.found, seen.known, lambda p: all(w.covers(p) for w in seen.walks))
    return plan


def _look(
    index: Records, path: bytes, roots: dict[bytes, int], settings: ScanConfig, seen: _Seen
) -> None:
    """Add what is at `path` (a file, or a folder and its files) and the index's rows for it."""
    ordered = sorted(roots, key=len, reverse=True)
    root = next((r for r in ordered if path == r or path.startswith(r + b"/")), None)
    if root is None:
        return
    walk = Walk(root, settings)
    if walk.excluded_path(path):
        return
    seen.known.update(index.files_at(path))
    try:
        is_dir = os.path.isdir(path) and not os.path.islink(path)
        if is_dir:  # walked from the root's Walk: excludes stay relative to the root
            seen.found.update({p: (roots[root], s) for p, s in walk.files(path, seen.known)})
            seen.walks.append(walk)
        elif os.path.isfile(path) and walk.wanted(path, os.path.basename(path), seen.known):
            seen.found[path] = (roots[root], Stat.of(os.stat(path)))
    except OSError:
        return  # gone again: the index rows for it count as vanished


def apply_moves(index: Records, plan: ScanPlan, counts: Counts) -> None:
    """Remove the vanished files, move the moved ones. A vanished file that a read may
    find again elsewhere goes too (counted when its bytes are read: `jobs.count_read`), so a
    scan stopped before that read leaves nothing the next one would trust."""
    maybe_moved = [job.was.id for job in plan.reads if job.was is not None]
    with index.batch():
        index.delete_files([row.id for row in plan.removals] + maybe_moved)
        for row, path, root_id in plan.moves:
            index.move_file(row.id, path, root_id)
    counts.removed += len(plan.removals)
    counts.moved += len(plan.moves)
