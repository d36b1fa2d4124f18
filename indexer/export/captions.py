"""Caption files for training tools: one `.txt` per picture, tags by descending score.

`stem.txt` beside the picture, or mirrored under a folder (`export.sidecars` says where;
`1.png` and `1.jpg` in one folder get `1.png.txt` and `1.jpg.txt`). The rating is written
`rating:general`, as Hydrus and booru prompts write it: a bare `general` would read as
a feature of the picture (leave it out with `--exclude general`).
"""

from __future__ import annotations

from collections.abc import Iterable

from indexer.export.thresholds import Scored, caption_text, named

SUFFIX = b".txt"


def caption_line(tags: Iterable[Scored]) -> str:
    ordered = sorted(tags, key=lambda t: -t.score)
    return ", ".join(":".join(map(caption_text, named(t))) for t in ordered)


def caption_file(tags: Iterable[Scored]) -> bytes:
    return (caption_line(tags) + "\n").encode("utf-8")
