"""Comparing a walk with the index: what is unchanged, new, changed, moved or gone.

Nothing is read here. A root that is missing, or empty while the index holds files under
it (an unmounted disk looks like that), stops the scan before anything is removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .config import ScanConfig
from .errors import ScanError
from .indexing import Counts, ReadJob, is_unchanged
from .store.index import FileRow, Index, Stat
from .walk import Walk


@dataclass
class Plan:
    """What a scan has to do after the walk."""

    reads: list[ReadJob] = field(default_factory=list)
    moves: list[tuple[FileRow, bytes, int]] = field(default_factory=list)
    removals: list[FileRow] = field(default_factory=list)
    root_ids: list[int] = field(default_factory=list)


def check_root(root: Path) -> bytes:
    if not root.exists():
        raise ScanError(f"{root}: root not found (unmounted?); nothing was removed from the index")
    if not root.is_dir():
        raise ScanError(f"{root}: root is not a folder")
    return os.fsencode(os.path.abspath(root))


def plan_scan(
    index: Index, roots: list[Path], settings: ScanConfig, counts: Counts, allow_empty: bool = False
) -> Plan:
    plan = Plan()
    encoded = [check_root(root) for root in roots]
    walked: list[tuple[int, Walk, dict[bytes, Stat], dict[bytes, FileRow]]] = []
    for root, path in zip(roots, encoded, strict=True):
        root_id = index.root_id(path, os.stat(path).st_dev)
        walk = Walk(path, settings)
        found = dict(walk.files())
        known = index.files_under(root_id)
        if not found and known and not allow_empty and not walk.unreadable:
            raise ScanError(
                f"{root}: root is empty but the index holds {len(known)} files under it "
                "(unmounted?); nothing was removed. Use --allow-empty if they were deleted"
            )
        walked.append((root_id, walk, found, known))
        plan.root_ids.append(root_id)

    new: list[tuple[bytes, int, Stat]] = []
    vanished: dict[tuple[int, int, int, int], FileRow] = {}
    for root_id, walk, found, known in walked:
        counts.files += len(found)
        for path, stat in found.items():
            row = known.get(path)
            if row is None:
                new.append((path, root_id, stat))
            elif is_unchanged(row, stat):
                counts.unchanged += 1
            else:
                plan.reads.append(ReadJob(path, root_id, stat, row))
        for path, row in known.items():
            if path not in found and walk.covers(path):
                vanished[(row.device, row.inode, row.size, row.mtime_ns)] = row
    for path, root_id, stat in new:
        moved = vanished.pop((stat.device, stat.inode, stat.size, stat.mtime_ns), None)
        if moved is not None:
            plan.moves.append((moved, path, root_id))
        else:
            plan.reads.append(ReadJob(path, root_id, stat, None))
    plan.removals = list(vanished.values())
    return plan


def apply_moves(index: Index, plan: Plan, counts: Counts) -> None:
    index.delete_files([row.id for row in plan.removals])
    counts.removed += len(plan.removals)
    for row, path, root_id in plan.moves:
        index.move_file(row.id, path, root_id)
    counts.moved += len(plan.moves)
    index.commit()
