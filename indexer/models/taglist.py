"""Tag lists in the formats models are published with.

- One tag per line: deeptagger's `.tags`, JoyTag's `top_tags.txt`, DeepDanbooru's
  `tags.txt`.
- CSV with a header naming a `name` (or `tag`) column: WD's `selected_tags.csv`, deepghs'
  `tags_info.csv` and `selected_tags.csv` (with a per-tag `best_threshold` where the
  authors measured one), ML-Danbooru's `tags.csv`. Categories are numbers, named by a
  `categories.json` beside the list where there is one, else by Danbooru's numbering.
- JSON: Camie's metadata (`dataset_info.tag_mapping`), cl_tagger's `tag_mapping.json`
  (`{"0": {"tag": ..., "category": ...}}`), or a plain list of names (`classes.json`).

Categories are kept by name (general, character, rating, artist, year, ...).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.errors import ModelError

# Danbooru's category numbers, as WD's and deepghs' CSV lists use them.
CATEGORY_NAMES = {
    0: "general",
    1: "artist",
    3: "copyright",
    4: "character",
    5: "meta",
    9: "rating",
    10: "year",
}


@dataclass(frozen=True)
class TagList:
    names: tuple[str, ...]
    categories: tuple[str | None, ...]
    thresholds: tuple[float | None, ...] = ()  # per tag, where the authors published them

    def __len__(self) -> int:
        return len(self.names)


def _is_csv_header(line: str) -> bool:
    fields = [f.strip().lower() for f in line.split(",")]
    return len(fields) > 1 and ("name" in fields or "tag" in fields)


def parse_taglist(
    text: str, where: str, numbering: Mapping[int, str] = CATEGORY_NAMES, json_list: bool = False
) -> TagList:
    """`numbering` names a CSV's category numbers; `json_list`: the text is JSON."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    thresholds: list[float | None] = []
    if json_list:
        names, categories = _parse_json(text, where)
    elif _is_csv_header(first):
        names, categories, thresholds = _parse_csv(text, where, numbering)
    else:
        names = [line.rstrip("\r") for line in text.split("\n")]
        while names and not names[-1].strip():
            names.pop()
        categories = [None] * len(names)
    _check_names(names, where)
    return TagList(tuple(names), tuple(categories), tuple(thresholds))


def _check_names(names: list[str], where: str) -> None:
    for number, name in enumerate(names, start=1):
        if not name.strip():
            raise ModelError(f"{where}: tag {number} is empty")
        if "\t" in name or "\n" in name or "\r" in name:
            raise ModelError(f"{where}: tag {number} ({name!r}) holds a tab or line break")
    if not names:
        raise ModelError(f"{where}: the tag list is empty")


def _cell_number(row: list[str], column: int | None, where: str, what: str) -> float | None:
    if column is None or len(row) <= column or not row[column].strip():
        return None
    try:
        return float(row[column])
    except ValueError:
        raise ModelError(f"{where}: {what} {row[column]!r} is not a number") from None


def _parse_csv(
    text: str, where: str, numbering: Mapping[int, str]
) -> tuple[list[str], list[str | None], list[float | None]]:
    rows = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(rows)]
    name_col = header.index("name") if "name" in header else header.index("tag")
    cat_col = header.index("category") if "category" in header else None
    limit_col = header.index("best_threshold") if "best_threshold" in header else None
    names: list[str] = []
    categories: list[str | None] = []
    thresholds: list[float | None] = []
    for number, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= name_col:
            raise ModelError(f"{where}:{number}: row has no {header[name_col]!r} column")
        names.append(row[name_col])
        code = _cell_number(row, cat_col, f"{where}:{number}", "category")
        if code is not None and code != int(code):
            raise ModelError(f"{where}:{number}: category {code!r} is not a whole number")
        categories.append(None if code is None else numbering.get(int(code), str(int(code))))
        thresholds.append(_cell_number(row, limit_col, f"{where}:{number}", "best_threshold"))
    return names, categories, thresholds if limit_col is not None else []


def _parse_json(text: str, where: str) -> tuple[list[str], list[str | None]]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{where}: not valid JSON: {exc}") from None
    except RecursionError:
        raise ModelError(f"{where}: not valid JSON: nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("dataset_info"), dict):
        data = data["dataset_info"].get("tag_mapping", {})  # Camie's metadata
    if isinstance(data, list) and all(isinstance(n, str) for n in data):
        return list(data), [None] * len(data)
    if isinstance(data, dict) and isinstance(data.get("idx_to_tag"), dict):
        names = _by_index(data["idx_to_tag"], where)
        kinds = data.get("tag_to_category") or {}
        return names, [_category(kinds.get(n)) for n in names]
    if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        entries = _by_index(data, where)  # cl_tagger: {"0": {"tag": ..., "category": ...}}
        try:
            return [e["tag"] for e in entries], [_category(e.get("category")) for e in entries]
        except (KeyError, TypeError):
            raise ModelError(f"{where}: entries need a 'tag' field") from None
    raise ModelError(
        f"{where}: not a tag list this program knows (a list of names, Camie's metadata, "
        "or {index: {tag, category}})"
    )


def _by_index(table: Mapping[str, Any], where: str) -> list[Any]:
    """Values of {"0": ..., "1": ...} in index order; every index from 0 must be there."""
    try:
        indexed = {int(key): value for key, value in table.items()}
    except ValueError:
        raise ModelError(f"{where}: keys must be indices 0, 1, 2, ...") from None
    missing = sorted(set(range(len(indexed))) - set(indexed))
    if missing:
        raise ModelError(f"{where}: index {missing[0]} is missing (outputs would shift)")
    return [indexed[i] for i in range(len(indexed))]


def _category(value: object) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def category_numbering(folder: Path) -> dict[int, str]:
    """Danbooru's numbering, overridden by a `categories.json` beside the list
    (`[{"category": 0, "name": "general"}, ...]`, as deepghs publishes)."""
    numbering = dict(CATEGORY_NAMES)
    try:
        data = json.loads((folder / "categories.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return numbering
    except RecursionError:
        raise ModelError(f"{folder / 'categories.json'}: nested too deeply") from None
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and isinstance(item.get("category"), int):
                numbering[item["category"]] = str(item.get("name", item["category"])).lower()
    return numbering


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
    numbering = category_numbering(path.parent)
    json_list = path.suffix.lower() == ".json"
    return parse_taglist(text, str(path), numbering, json_list), raw
