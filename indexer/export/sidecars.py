"""Sidecar files: where each picture's goes (how one is replaced: `writing`).

A sidecar lies beside its picture, or under `--out` at the picture's path below its root.
Captions drop the picture's extension (`a.txt`) unless another picture shares the stem;
XMP and Hydrus sidecars always keep it (`a.png.xmp`), as digiKam, darktable and Hydrus
look for them.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable


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
    """Where each picture's sidecar goes, knowing every root (and, for captions, every
    picture) the index holds.

    Under `--out`, one root's pictures mirror their paths below it; with several roots
    each gets a folder of its own (`root_labels`), so two roots holding the same
    relative path never share a sidecar. With `all_paths`, the picture's extension is
    dropped where no other picture has the same stem, and no picture's path is that stem
    (`image.png.1`, wget's second download, keeps `.1` beside `image.png`); stems are
    compared as a file system that folds case would.
    """

    def __init__(
        self,
        out: bytes | None,
        roots: Iterable[bytes],
        suffix: bytes,
        all_paths: Iterable[bytes] | None = None,
    ) -> None:
        self.out, self.suffix = out, suffix
        self._bare = None if all_paths is None else bare_stems(all_paths)
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
        base = sidecar_name(path, self._bare, b"")
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


def bare_stems(paths: Iterable[bytes]) -> set[bytes]:
    """The stems (folded to lower case) whose picture's caption drops its extension: no
    other of `paths` has that stem, and none is named it."""
    folded = [path.lower() for path in paths]
    stems = Counter(_stem(path) for path in folded)
    return {stem for stem, n in stems.items() if n == 1} - set(folded)


def sidecar_name(path: bytes, bare: set[bytes] | None, suffix: bytes) -> bytes:
    """`path`'s sidecar beside it: its stem and `suffix` where the stem is in `bare`
    (None: the extension is always kept), else its whole name and `suffix`."""
    if bare is not None and _stem(path.lower()) in bare:
        return _stem(path) + suffix
    return path + suffix


def folds_case(folder: bytes, unknown: bool = False) -> bool:
    """Whether the file system at `folder` (or its nearest existing parent) takes a name
    in the other case for the same file, as macOS's and Windows's do. One of the folder's
    own entries is looked up with its case swapped, as a folder may differ from its
    parent (the root of an exFAT card, an ext4 folder with `chattr +F`); without one that
    tells, its own name in its parent, and so on up; `unknown` where nothing tells (a
    caller about to remove files takes folding, so that names match more widely)."""
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        names = os.listdir(folder or b".")
    except OSError:
        return unknown
    told = _told(folder or b".", names)
    while told is None and folder not in (b"", b"/"):
        parent, name = os.path.split(folder)
        told = _told(parent or b".", [name], seen=False)
        folder = parent
    return unknown if told is None else told


def _told(folder: bytes, names: list[bytes], seen: bool = True) -> bool | None:
    """What the first of `names` (entries of `folder`) holding a letter, and whose
    other-case name is not an entry of its own, says: whether that name in the other case
    is the same file; None where none tells, or the lookup fails."""
    listed = set(names) if seen else set()
    for name in names:
        swapped = name.swapcase()
        if swapped == name or swapped in listed:
            continue
        try:
            here = os.lstat(os.path.join(folder, name))
            there = os.lstat(os.path.join(folder, swapped))
        except FileNotFoundError:
            return False
        except OSError:
            return None
        return os.path.samestat(here, there)
    return None


def _stem(path: bytes) -> bytes:
    return os.path.splitext(path)[0]
