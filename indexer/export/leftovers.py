"""Files dtindex wrote beside pictures under a name no picture has any more: removed.

A caption's name depends on its neighbours (`sidecars`): `dup.png` alone gets `dup.txt`,
beside `dup.jpg` it gets `dup.png.txt`, so `dup.txt`, still holding dup.png's tags, is
what a training tool looking up `STEM.txt` reads as dup.jpg's caption. A picture deleted
or renamed (in case only, too) leaves its caption, or its Hydrus sidecar, the same way.
So a full export beside the pictures (not under `--out`, not `--changed-since`) removes,
in each folder it writes into, each file that is at once:

- listed in the folder's manifest as written by this format beside the pictures, and
  holding those bytes still (a caption the user corrected is theirs), with no line
  listing those bytes for another format, for an export under `--out`, or by an older
  dtindex (which kept no format): those stay;
- neither written nor found up to date by this run;
- the name of no picture in the folder by the current rule, the folder being listed
  then, its pictures told by the scanner's rule (`imaging.sniff.Pictures`, with the
  configured extensions: a `.psd` or a `.gif` the scan leaves out gives no name), a file
  that may yet be one (unreadable, too short to tell) taken for a picture: a picture
  added since the scan keeps its file, and so does a picture whose file another export
  has just written. Names are compared in either case where the folder itself takes a
  name in the other case for the same file (one of its own entries looked up so), or
  where that cannot be told;
- not the same file as one this run kept (a hard link, or the same entry looked up in
  another case on a file system that folds case), nor one a symbolic link in the folder
  points to (`rdfind -makesymlinks` and `jdupes -l` link identical captions): removing
  it would take the kept caption along.

So an `--out` export never removes, a beside export never removes what an `--out` export
wrote (a mirror inside a root), and neither format removes the other's file where a
caption and a Hydrus sidecar share a name. The folder's lock is held from its listing to
its last removal, so another dtindex export writes there before or after, not between;
the manifest is read again under it, for that export's lines.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Iterable

from indexer.export.ownership import Ownership
from indexer.export.sidecars import bare_stems, folds_case, sidecar_name
from indexer.export.writing import folder_lock, linked_in, remove_held
from indexer.imaging.sniff import Pictures


def remove_left_over(
    owner: Ownership,
    kept: Iterable[bytes],
    suffix: bytes,
    drops_extension: bool,
    pictures: Pictures,
    needed: set[tuple[int, int]],
) -> tuple[int, list[tuple[bytes, OSError]]]:
    """Remove the leftovers in the folders of `kept` (the files this run wrote or found
    up to date, `needed` their identities, links followed), `pictures` being the
    scanner's rule of which files are pictures; how many went, and the files that could
    not be read or removed."""
    by_folder: dict[bytes, set[bytes]] = defaultdict(set)
    for target in kept:
        folder, name = os.path.split(target)
        by_folder[folder].add(name)
    removed, failed = 0, []
    for folder, names in sorted(by_folder.items()):
        candidates = owner.candidates(folder) - names
        if not candidates:
            continue  # the usual case: no lock taken, nothing listed
        try:
            with folder_lock(folder or b"."):
                judge = owner.left_over(folder)
                given, fold = _given(folder, suffix, drops_extension, pictures)
                keep = linked_in(folder) | needed
                for name in sorted(candidates):
                    if (name.lower() if fold else name) in given:
                        continue
                    path = os.path.join(folder, name)
                    try:
                        removed += remove_held(path, functools.partial(judge, name), keep)
                    except OSError as exc:
                        failed.append((path, exc))
        except FileNotFoundError:
            continue  # the folder went since: nothing is left in it
        except OSError as exc:  # the folder cannot be listed or locked
            failed.append((folder, exc))
    return removed, failed


def _given(
    folder: bytes, suffix: bytes, drops_extension: bool, pictures: Pictures
) -> tuple[set[bytes], bool]:
    """The names the pictures in `folder` now give their files (folded to lower case
    where the folder folds case), by the scanner's rule, a file that may yet be a picture
    counted as one; and whether the folder folds case."""
    with os.scandir(folder or b".") as entries:
        listed = [(e.name, e.path) for e in entries if not e.is_dir()]
    found = [name for name, path in listed if pictures.might_be(path)]
    bare = bare_stems(found) if drops_extension else None
    names = {sidecar_name(name, bare, suffix) for name in found}
    fold = folds_case(folder or b".", unknown=True)
    return ({name.lower() for name in names} if fold else names), fold
