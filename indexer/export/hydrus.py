"""Hydrus sidecars: `FILE.EXT.txt`, one tag per line, for Hydrus's sidecar import.

Hydrus writes tags with spaces, not underscores (kaomoji keep theirs), and puts a tag's
kind in a namespace: `character:hatsune miku`, `creator:` for artists, `series:` for
copyrights, `rating:general`, any other category by its own name (`meta:`, `year:`);
general tags have none. Hydrus reads the text
before a tag's first colon as its namespace, so a general tag holding a colon (`:d`,
`re:zero`) is written with a leading colon, Hydrus's mark for "no namespace".
"""

from __future__ import annotations

from collections.abc import Iterable

from indexer.export.thresholds import Scored, caption_text

SUFFIX = b".txt"

# Danbooru's category names where Hydrus names the namespace otherwise; general has none.
NAMESPACES = {"general": "", "artist": "creator", "copyright": "series"}


def hydrus_tag(tag: Scored) -> str:
    text = caption_text(tag.tag)
    namespace = NAMESPACES.get(tag.category, tag.category) if tag.category else None
    if namespace:
        return f"{namespace}:{text}"
    return f":{text}" if ":" in text else text


def hydrus_file(tags: Iterable[Scored]) -> bytes:
    """The sidecar's bytes: tags by descending score, each once."""
    lines = dict.fromkeys(hydrus_tag(t) for t in sorted(tags, key=lambda t: -t.score))
    return "".join(f"{line}\n" for line in lines).encode("utf-8")
