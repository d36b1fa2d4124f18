"""The scan's bulk writes and group lookups: a few statements per group, not per row.

The main process must spend well under a millisecond per picture, so rows go through the
driver's `executemany` (`store.driver`), and lookups take a whole group in one query.
These are the one write path for contents, files, taggings (results and failures),
scores and embeddings, and the release of claims.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, insert, select

from indexer.store.driver import Direct, Insert
from indexer.store.retry import Attempt
from indexer.store.schema import claims, contents, embeddings, files, scores, taggings

T = TypeVar("T")
# SQLite caps a statement's parameters (999 before 3.32); lookups go in chunks of this.
CHUNK = 500

ContentRow = tuple[str, str, int, int | None, int | None]  # xxh128, sha1, size, width, height
# path, root_id, size, mtime_ns, inode, device, content_id, checked_ns, error, kind, ctime_ns
FileValues = tuple[
    bytes, int, int, int, int, int, int | None, int, str | None, str | None, int | None
]
_CONTENT = ("xxh128", "sha1", "size", "width", "height")
_FILE = ("path", "root_id", "size", "mtime_ns", "inode", "device", "content_id", "checked_ns",
         "error", "kind", "ctime_ns")  # fmt: skip


def _add_content(insert: Insert) -> Any:
    """A known content keeps its row; it gains the size it lacked (read before it was
    decoded)."""
    statement = insert(contents).values({name: bindparam(name) for name in _CONTENT})
    return statement.on_conflict_do_update(
        index_elements=[contents.c.xxh128],
        set_={"width": statement.excluded.width, "height": statement.excluded.height},
        where=contents.c.width.is_(None) & statement.excluded.width.is_not(None),
    )


def _put_file(insert: Insert) -> Any:
    statement = insert(files).values({name: bindparam(name) for name in _FILE})
    changed = {name: statement.excluded[name] for name in _FILE if name != "path"}
    return statement.on_conflict_do_update(index_elements=[files.c.path], set_=changed)


_TAGGING = ("model_version_id", "content_id", "status", "error", "tagged_ns", "kind", "needs")


def _put_tagging(insert: Insert) -> Any:
    """A result or a failure replaces what the pair had: the one write of `taggings`."""
    statement = insert(taggings).values({name: bindparam(name) for name in _TAGGING})
    changed = {name: statement.excluded[name] for name in _TAGGING[2:]}
    return statement.on_conflict_do_update(
        index_elements=[taggings.c.model_version_id, taggings.c.content_id], set_=changed
    )


def _put_embedding(insert: Insert) -> Any:
    statement = insert(embeddings).values(
        model_version_id=bindparam("v"), content_id=bindparam("c"), vector=bindparam("vector")
    )
    return statement.on_conflict_do_update(
        index_elements=[embeddings.c.model_version_id, embeddings.c.content_id],
        set_={"vector": statement.excluded.vector},
    )


def _of_pair(table: Any) -> Any:
    """DELETE a (model version, content) pair's rows of `table`."""
    return delete(table).where(
        table.c.model_version_id == bindparam("v"), table.c.content_id == bindparam("c")
    )


PUT_TAGGING = Direct(_put_tagging, *_TAGGING)
PUT_EMBEDDING = Direct(_put_embedding, "v", "c", "vector")
ADD_SCORE = Direct(
    lambda _: insert(scores).values(
        model_version_id=bindparam("v"),
        content_id=bindparam("c"),
        tag_idx=bindparam("t"),
        score=bindparam("s"),
    ),
    *"vcts",
)
DROP_SCORES = Direct(lambda _: _of_pair(scores), "v", "c")
RELEASE = Direct(lambda _: _of_pair(claims), "v", "c")


_ADD_CONTENT = Direct(_add_content, *_CONTENT)
_PUT_FILE = Direct(_put_file, *_FILE)
_CONTENT_IDS = select(contents.c.xxh128, contents.c.id).where(
    contents.c.xxh128.in_(bindparam("keys", expanding=True))
)


def chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    """`items` in slices of `CHUNK`: the values of one `IN (...)`."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def add_contents(conn: Connection, rows: Sequence[ContentRow]) -> dict[str, int]:
    """Insert contents not known yet (a known one gains a size it lacked); ids by xxh3."""
    _ADD_CONTENT.run(conn, list(rows))
    ids: dict[str, int] = {}
    for part in chunks(sorted({row[0] for row in rows})):
        for xxh, content_id in conn.execute(_CONTENT_IDS, {"keys": list(part)}):
            ids[str(xxh)] = int(content_id)
    return ids


def put_files(conn: Connection, rows: Sequence[FileValues]) -> None:
    """Insert or update file rows: the one definition of the file upsert."""
    _PUT_FILE.run(conn, list(rows))


def settled_pairs(
    conn: Connection, content_ids: Iterable[int], attempt: Attempt
) -> set[tuple[int, int]]:
    """(model version, content) pairs with nothing left to do, as `attempt` sees them."""
    found: set[tuple[int, int]] = set()
    query = select(taggings.c.model_version_id, taggings.c.content_id).where(
        taggings.c.content_id.in_(bindparam("ids", expanding=True)), attempt.settled()
    )
    for part in chunks(sorted(set(content_ids))):
        found.update((int(v), int(c)) for v, c in conn.execute(query, {"ids": list(part)}))
    return found
