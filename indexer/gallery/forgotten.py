"""Roots that `dtindex forget` removed while a watch or scan was running on them.

A running process keeps its roots' ids; `forget` deletes the root rows (and their files,
by cascade) under it, and the process's next file row for such a root failed with
"FOREIGN KEY constraint failed", ending it; one that lands once its file rows are all
written breaks nothing, and is found when the scan marks its roots scanned
(`gallery.scanning`). The user asked for that root to go, so it is not indexed anew (a
rescan would insert the root again): a watch stops watching it and goes on with the
others; a scan fails that root with this message (exit 1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from indexer.errors import ScanError
from indexer.store.records import Records

log = logging.getLogger("dtindex")


def forgotten(index: Records, root_ids: Mapping[bytes, int]) -> list[bytes]:
    """Of `root_ids` (path: id), the roots whose row is gone."""
    present = index.present_root_ids()
    return [root for root, root_id in root_ids.items() if root_id not in present]


def drop_forgotten(index: Records, roots: list[Path], root_ids: dict[bytes, int]) -> bool:
    """Stop following roots forgotten meanwhile (said on stderr); whether any was.

    Raises ScanError when none is left to follow."""
    gone = forgotten(index, root_ids)
    for root in gone:
        log.warning("%s: forgotten (dtindex forget); no longer watched", os.fsdecode(root))
        del root_ids[root]
    roots[:] = [root for root in roots if os.fsencode(root) not in gone]
    if gone and not roots:
        raise ScanError("every watched root was forgotten (dtindex forget); nothing to watch")
    return bool(gone)


def forgotten_error(index: Records, root_ids: Mapping[bytes, int]) -> ScanError | None:
    """For a scan: the error to report when roots were forgotten under it."""
    gone = forgotten(index, root_ids)
    return forgotten_roots(gone) if gone else None


def forgotten_roots(gone: list[bytes]) -> ScanError:
    """The error a scan reports for roots forgotten under it."""
    named = ", ".join(map(os.fsdecode, gone))
    return ScanError(
        f"{named}: forgotten (dtindex forget) while this scan ran; its files "
        "were not indexed (scan it again to index it anew)"
    )
