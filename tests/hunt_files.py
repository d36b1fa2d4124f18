"""The user's own files in the hunting test's gallery: sidecars as photo tools write them,
captions where the README says they go, and exiftool's reading of them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

# The user's photo tool writes simple properties as attributes with escaped line breaks
# and tabs, as exiv2 (digiKam, darktable) does.
USER_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:Rating="{rating}" xmp:Label="{label}"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def photo_tool_save(picture: Path, rating: int, label: str) -> tuple[Path, str] | None:
    """The photo tool rates a picture in its sidecar: a new one written as exiv2 writes it
    (attributes, escaped line breaks; renamed into place), an existing one through exiftool.
    The sidecar and the label as the tool saved it (exiftool writes a CR raw, which every
    reader then takes as a line feed), or None where exiftool could not save."""
    sidecar = picture.with_name(picture.name + ".xmp")
    if sidecar.exists():
        saved = exiftool_write(sidecar, rating, label)
        return None if saved is None else (sidecar, saved)
    escaped = label.replace("\r", "&#xD;").replace("\n", "&#xA;").replace("\t", "&#x9;")
    temporary = sidecar.with_name(".~" + sidecar.name)
    temporary.write_text(USER_XMP.format(rating=rating, label=escaped), "utf-8")
    os.replace(temporary, sidecar)
    return sidecar, label


def caption_path(path: Path, pictures: Iterable[Path]) -> Path:
    """The README's rule: `stem.txt`, or `name.ext.txt` where another picture shares the
    stem or is named the stem (`image.png` beside `image.png.1`), both folding case."""
    stem = path.with_suffix("")
    key = str(stem).casefold()
    others = [str(p).casefold() for p in pictures if p != path]
    shared = any(o == key or os.path.splitext(o)[0] == key for o in others)
    return path.with_name(path.name + ".txt") if shared else stem.with_name(stem.name + ".txt")


def exiftool(paths: Sequence[Path]) -> dict[Path, dict[str, object]]:
    """exiftool's reading of existing sidecars, by path (numbers as numbers)."""
    present = [str(p) for p in paths if p.exists()]
    if not present:
        return {}
    done = subprocess.run(
        ["exiftool", "-j", "-n", "-XMP:all", *present], capture_output=True, timeout=120
    )
    records = json.loads(done.stdout or b"[]")
    return {Path(r["SourceFile"]): r for r in records}


def exiftool_write(sidecar: Path, rating: int, label: str) -> str | None:
    """The photo tool saves into an existing sidecar (exiftool, as digiKam's writer would);
    the label as saved, or None. exiftool writes a carriage return raw into element text,
    which XML (exiv2, dtindex) reads as a line feed and exiftool as a carriage return: the
    two readings of one file differ, so the label goes in with line feeds only."""
    label = label.replace("\r\n", "\n").replace("\r", "\n")
    done = subprocess.run(
        [
            "exiftool",
            "-q",
            "-overwrite_original",
            f"-XMP-xmp:Rating={rating}",
            f"-XMP-xmp:Label={label}",
            str(sidecar),
        ],
        capture_output=True,
        timeout=60,
    )
    return label if done.returncode == 0 else None
