"""Tag lists: deeptagger's one-tag-per-line files and the CSV lists models are published with.

WD's `selected_tags.csv` (`tag_id,name,category,count`) and ML-Danbooru's `tags.csv`
(name in the first column) are recognised by a header naming a `name` column; the
category is kept where the file has one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import ModelError

CATEGORY_NAMES = {0: "general", 1: "artist", 3: "copyright", 4: "character", 5: "meta", 9: "rating"}


@dataclass(frozen=True)
class TagList:
    names: tuple[str, ...]
    categories: tuple[int | None, ...]

    def __len__(self) -> int:
        return len(self.names)


def _is_csv_header(line: str) -> bool:
    fields = [f.strip().lower() for f in line.split(",")]
    return len(fields) > 1 and ("name" in fields or "tag" in fields)


def parse_taglist(text: str, where: str) -> TagList:
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    if _is_csv_header(first):
        names, categories = _parse_csv(text, where)
    else:
        names = [line.rstrip("\r") for line in text.split("\n")]
        while names and not names[-1].strip():
            names.pop()
        categories = [None] * len(names)
    for number, name in enumerate(names, start=1):
        if not name.strip():
            raise ModelError(f"{where}: tag {number} is empty")
        if "\t" in name or "\n" in name or "\r" in name:
            raise ModelError(f"{where}: tag {number} ({name!r}) holds a tab or line break")
    if not names:
        raise ModelError(f"{where}: the tag list is empty")
    return TagList(tuple(names), tuple(categories))


def _parse_csv(text: str, where: str) -> tuple[list[str], list[int | None]]:
    rows = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(rows)]
    name_col = header.index("name") if "name" in header else header.index("tag")
    cat_col = header.index("category") if "category" in header else None
    names: list[str] = []
    categories: list[int | None] = []
    for number, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= name_col:
            raise ModelError(f"{where}:{number}: row has no {header[name_col]!r} column")
        names.append(row[name_col])
        category: int | None = None
        if cat_col is not None and len(row) > cat_col and row[cat_col].strip():
            try:
                category = int(row[cat_col])
            except ValueError:
                message = f"{where}:{number}: category {row[cat_col]!r} is not a number"
                raise ModelError(message) from None
        categories.append(category)
    return names, categories


def read_taglist(path: Path) -> tuple[TagList, bytes]:
    """Read and parse a tag list; the raw bytes are part of the model version."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: tag list not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read tag list: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError(f"{path}: tag list is not UTF-8 text") from None
    return parse_taglist(text, str(path)), raw
