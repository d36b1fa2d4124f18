"""Sidecar files: where each picture's goes (how one is replaced: `writing`).

A sidecar lies beside its picture, or under `--out` at the picture's path below its root.
XMP and Hydrus sidecars keep the picture's whole name (`a.png.xmp`), as digiKam,
darktable and Hydrus look for them. Captions drop a picture extension (`a.png` gets
`a.txt`, which training tools read), and only that: `scan.0001` and `image.png.1` (wget's
second download) keep their whole name. A caption's name is so made of the picture's own
name alone, and stays the same as other files come and go; were it chosen by the
neighbours (`a.png.txt` while an `a.jpg` is there), each such change would leave a
caption behind under the old name. Two pictures of one stem (`1.png`, `1.jpg`) would get
one caption, which a training tool would read for either: that is a clash (`clashes`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable

from indexer.config import DEFAULT_EXTENSIONS

# The extensions a caption drops: those of the picture formats dtindex reads, whatever the
# configuration says, so that a caption's name never depends on a setting either.
PICTURE_SUFFIXES = frozenset(b"." + e.encode() for e in DEFAULT_EXTENSIONS)


def root_labels(roots: Iterable[bytes]) -> dict[bytes, bytes]:
    """A folder name per root under `--out`: its last path components, as many as it
    takes to tell it from the others (`/a/g` and `/b/g` become `a/g` and `b/g`), and so
    that no label is a folder inside another (`photos` and `disk/photos/anime`, not
    `photos/anime`), where two roots' files would meet. Labels are told apart as a file
    system that folds case would (`Pics`, `pics`)."""
    parts = {root: root.rstrip(b"/").split(b"/") for root in set(roots)}
    depth = 1
    while True:
        labels = {root: b"/".join(p[-depth:]).lstrip(b"/") for root, p in parts.items()}
        if _apart(labels.values()) or depth > max(map(len, parts.values())):
            return labels
        depth += 1


def _apart(labels: Iterable[bytes]) -> bool:
    """Whether no two labels are the same folder, nor one a folder inside another."""
    folded = [label.lower() for label in labels]
    unique = set(folded)
    if len(unique) < len(folded):
        return False
    for label in unique:
        parts = label.split(b"/")
        if any(b"/".join(parts[:n]) in unique for n in range(1, len(parts))):
            return False
    return True


class SidecarNamer:
    """Where each picture's sidecar goes, knowing every root the index holds.

    Under `--out`, one root's pictures mirror their paths below it; with several roots
    each gets a folder of its own (`root_labels`), so two roots holding the same
    relative path never share a sidecar. With `drops_extension` (captions), a picture
    extension is dropped (`caption_base`). `tops`: the folders below which its files lie,
    `--out` or every root (`every_root`: also those no picture lies under any more).
    """

    def __init__(
        self,
        out: bytes | None,
        roots: Iterable[bytes],
        suffix: bytes,
        drops_extension: bool = False,
        every_root: Iterable[bytes] = (),
    ) -> None:
        self.out, self.suffix, self.drops_extension = out, suffix, drops_extension
        roots = set(roots)
        self.tops = [out] if out is not None else sorted(roots.union(every_root))
        labels = root_labels(roots)
        self._labels = labels if len(labels) > 1 else {}
        self._targets: dict[bytes, bytes] = {}  # a path lies under one root

    def target(self, path: bytes, root: bytes) -> bytes:
        """The sidecar of `path` (under `root`); asked twice, as `clashes` then the write
        ask, it is worked out once."""
        known = self._targets.get(path)
        if known is None:
            known = self._targets[path] = self._target(path, root)
        return known

    def _target(self, path: bytes, root: bytes) -> bytes:
        base = caption_base(path) if self.drops_extension else path
        if self.out is None:
            return base + self.suffix
        inside = root.rstrip(b"/") + b"/"  # relpath's answer, without its cost a file
        below = base[len(inside) :] if base.startswith(inside) else os.path.relpath(base, root)
        below += self.suffix
        label = self._labels.get(root)
        return os.path.join(self.out, label, below) if label else os.path.join(self.out, below)

    def clashes(self, files: Iterable[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
        """Files that two or more pictures would go to, with those pictures' paths: the
        same name, or names that differ in case only where the folder folds case."""
        by_name: dict[bytes, set[bytes]] = defaultdict(set)
        for path, root in files:
            by_name[self.target(path, root)].add(path)
        by_folded: dict[bytes, list[bytes]] = defaultdict(list)
        for target in by_name:
            by_folded[target.lower()].append(target)
        found = {t: sorted(paths) for t, paths in by_name.items() if len(paths) > 1}
        for targets in by_folded.values():
            if len(targets) > 1 and folds_case(os.path.dirname(targets[0])):
                found[min(targets)] = sorted(set().union(*(by_name[t] for t in targets)))
        return found


def folds_case(folder: bytes) -> bool:
    """Whether the file system at `folder` (or its nearest existing parent) takes a name
    in the other case for the same file, as macOS's and Windows's do: the last component
    holding a letter is looked up with its case swapped."""
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    while folder not in (b"", b"/"):
        parent, name = os.path.split(folder)
        if name.swapcase() != name:
            try:
                return os.path.samestat(
                    os.stat(folder), os.stat(os.path.join(parent, name.swapcase()))
                )
            except OSError:
                return False
        folder = parent
    return False


def caption_base(path: bytes) -> bytes:
    """`path` less its extension where that is a picture's (any case): `a.PNG` -> `a`,
    `scan.0001` and `image.png.1` stay whole."""
    stem, extension = os.path.splitext(path)
    return stem if extension.lower() in PICTURE_SUFFIXES else path
