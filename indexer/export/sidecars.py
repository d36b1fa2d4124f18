"""Sidecar files: where each picture's goes (how one is replaced: `writing`).

A sidecar lies beside its picture, or under `--out` at the picture's path below its root.
Captions drop the picture's extension (`a.txt`) unless another picture shares the stem;
XMP and Hydrus sidecars always keep it (`a.png.xmp`), as digiKam, darktable and Hydrus
look for them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from indexer.export.writing import update_file


def root_labels(roots: Iterable[bytes]) -> dict[bytes, bytes]:
    """A folder name per root under `--out`: its last path components, as many as it
    takes to tell it from the others (`/a/g` and `/b/g` become `a/g` and `b/g`)."""
    parts = {root: root.rstrip(b"/").split(b"/") for root in set(roots)}
    depth = 1
    while True:
        labels = {root: b"/".join(p[-depth:]).lstrip(b"/") for root, p in parts.items()}
        if len(set(labels.values())) == len(labels) or depth > max(map(len, parts.values())):
            return labels
        depth += 1


class SidecarNamer:
    """Where each picture's sidecar goes, knowing every root (and, for captions, every
    picture) the index holds.

    Under `--out`, one root's pictures mirror their paths below it; with several roots
    each gets a folder of its own (`root_labels`), so two roots holding the same
    relative path never share a sidecar. With `all_paths`, the picture's extension is
    dropped where no other picture has the same stem.
    """

    def __init__(
        self,
        out: bytes | None,
        roots: Iterable[bytes],
        suffix: bytes,
        all_paths: Iterable[bytes] | None = None,
    ) -> None:
        self.out, self.suffix = out, suffix
        self._stems = None if all_paths is None else Counter(map(_stem, all_paths))
        labels = root_labels(roots)
        self._labels = labels if len(labels) > 1 else {}

    def target(self, path: bytes, root: bytes) -> bytes:
        base = path
        if self._stems is not None and self._stems[_stem(path)] == 1:
            base = _stem(path)
        if self.out is None:
            return base + self.suffix
        below = os.path.relpath(base, root) + self.suffix
        label = self._labels.get(root)
        return os.path.join(self.out, label, below) if label else os.path.join(self.out, below)


def _stem(path: bytes) -> bytes:
    return os.path.splitext(path)[0]


def replace_file(target: bytes, data: bytes) -> bool:
    """Make `target` hold `data`, the way `writing.update_file` replaces a file; False,
    touching nothing, where it already does."""
    return update_file(target, lambda _: data)
