"""The contents still to tag once a pass has read its files, and the path to read each from.

A content some model version has no result for (a model added since, a failure retried,
a claim given up because the file it was read through changed or went) is tagged through
one of its paths. That is the least path still a file: the one a pass chose first may be
the one that went (a picture copied, then the original moved away), and a copy under
another name holds the same bytes, as its decode checks against the content's hash. A
path the pass set aside (saved while read, or put back as perhaps still downloading) is
not tried again in the same pass: it would only be warned about and counted twice.

A scan reads a content none of whose paths is a file through its least one, whose read
says it went (the scan is then incomplete, as it is); a watch's batch (`among`) leaves it,
as the event of its going is on its way and brings the content back.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence

from indexer.gallery.jobs import TagJob
from indexer.store.records import Records
from indexer.store.retry import Attempt


def pending_jobs(
    index: Records,
    version_ids: Sequence[int],
    attempt: Attempt,
    among: Collection[int] | None = None,
    aside: Collection[bytes] = (),
) -> list[TagJob]:
    """A job per content that a version in `version_ids` has to tag (`among`: only these
    contents), naming the versions by their place in `version_ids`."""
    wanted: dict[int, list[int]] = {}
    paths: dict[int, list[bytes]] = {}
    hashes: dict[int, str] = {}
    for i, version_id in enumerate(version_ids):
        for content_id, path, xxh in index.unsettled(version_id, attempt, among):
            models = wanted.setdefault(content_id, [])
            if not models or models[-1] != i:
                models.append(i)
            if models[0] == i:  # each path once, as the first version wanting it lists them
                paths.setdefault(content_id, []).append(path)
            hashes[content_id] = xxh
    jobs = []
    for content_id, models in wanted.items():
        chosen = _chosen(paths[content_id], aside, fallback=among is None)
        if chosen is not None:
            jobs.append(TagJob(chosen, content_id, hashes[content_id], tuple(models)))
    return jobs


def _chosen(paths: list[bytes], aside: Collection[bytes], fallback: bool) -> bytes | None:
    """The least of `paths` (`Records.unsettled` lists them least first) that is a file
    and not set aside; else, with `fallback`, the least not set aside. A lone candidate
    is not looked at: most contents have one path, and its read tells."""
    candidates = [path for path in paths if path not in aside]
    if len(candidates) == 1 and fallback:
        return candidates[0]
    present = (path for path in candidates if os.path.isfile(path))
    return next(present, candidates[0] if candidates and fallback else None)
