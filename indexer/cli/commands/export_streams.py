"""`dtindex export --format tsv|csv|jsonl`: the tags on stdout, nothing else there.

tsv is what `gallery tag` reads: `id<TAB>tag<TAB>weight`, where a line with any other
number of fields rejects the whole import, so a path holding a tab or line break is
refused (named on stderr, exit 1) rather than printed. tsv and csv write a path's own
bytes; jsonl, which must be UTF-8, escapes those that are not (`ESCAPED`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from indexer.core.records import Exported, Scored

log = logging.getLogger("dtindex")

# A path's bytes that are not UTF-8, as `os.fsdecode` gives them (U+DC80..U+DCFF). JSON
# must be UTF-8, so jsonl writes each as the escape Python's json writes (`\udcff`):
# valid JSON, and `os.fsencode(json.loads(line)["paths"][0])` gives the exact bytes back.
ESCAPED = re.compile("[\udc80-\udcff]")


def stream(items: Iterator[Exported], fmt: str, ident: str, out: BinaryIO) -> int:
    """Write `items` to `out` as `fmt` (pictures named by `ident`: sha1 or path)."""
    refused = 0
    text = io.TextIOWrapper(
        out, encoding="utf-8", errors="surrogateescape", newline="", write_through=True
    )
    writer = csv.writer(text) if fmt == "csv" else None
    if writer:
        writer.writerow([ident, "tag", "weight", "category"])
    for item in items:
        sha1, files, tags = item.sha1, list(item.paths), list(item.tags)
        if fmt == "jsonl":
            out.write(_json_line(sha1, files, tags))
            continue
        ids = [sha1.encode()] if ident == "sha1" else files
        for name in ids:
            if writer:
                writer.writerows(_csv_row(name, t) for t in tags)
                continue
            if b"\t" in name or b"\n" in name or b"\r" in name:
                refused += 1
                log.warning("%r: path holds a tab or line break; not exported", name)
                continue
            out.write(b"".join(b"%s\t%s\t%.2f\n" % (name, t.tag.encode(), t.score) for t in tags))
    text.detach()
    out.flush()
    return 1 if refused else 0


def _csv_row(name: bytes, tag: Scored) -> list[str]:
    return [os.fsdecode(name), tag.tag, f"{tag.score:.4f}", tag.category or ""]


def _json_line(sha1: str, paths: list[bytes], tags: list[Scored]) -> bytes:
    record = {
        "sha1": sha1,
        "paths": [os.fsdecode(p) for p in paths],
        "tags": {t.tag: round(t.score, 4) for t in tags},
        "categories": {t.tag: t.category for t in tags if t.category is not None},
    }
    text = json.dumps(record, ensure_ascii=False)
    return ESCAPED.sub(lambda m: f"\\u{ord(m[0]):04x}", text).encode("utf-8") + b"\n"
