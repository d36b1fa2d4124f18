"""A picture named by its path (`show`, `similar`): why it has no result, in words that
say what would help. A scan helps a picture not scanned yet; it cannot help a path that
does not exist, a folder, or a file a model already failed on."""

from __future__ import annotations

import os

from sqlalchemy import Connection

from indexer.errors import Kind
from indexer.imaging.sniff import Pictures
from indexer.store.pictures import failed_versions, file_row
from indexer.store.queries import root_paths
from indexer.store.under import holds

RETRIED = " (the next scan tries it again)"


def not_indexed(conn: Connection, given: str, path: bytes, extensions: frozenset[str]) -> str:
    """Why `path` has no entry in the index."""
    if not os.path.lexists(path):
        return f"{given}: no such file"
    if os.path.isdir(path):
        return (
            f"{given}: a folder, not a picture; name one of its pictures "
            "(`dtindex status` lists the indexed roots, `dtindex search` finds pictures by tag)"
        )
    if os.path.isfile(path) and not Pictures(extensions)(path):
        return f"{given}: not a picture; dtindex does not index it (see [scan] extensions)"
    holding = [root for root in root_paths(conn) if holds(root, path)]
    if not holding:
        return (
            f"{given}: not under an indexed root (`dtindex status` lists them); "
            "`dtindex scan FOLDER` indexes the folder that holds it"
        )
    link = _linked_folder(path, max(holding, key=len))
    if link is not None:
        real = os.fsdecode(os.path.realpath(path))
        return (
            f"{given}: reached through {os.fsdecode(link)}, a symbolic link to a folder, "
            f"which scans do not follow; name it by its own path ({real})"
        )
    return f"{given}: not in the index (run dtindex scan)"


def _linked_folder(path: bytes, root: bytes) -> bytes | None:
    """The first folder between `root` and `path` that is a symbolic link, if any."""
    folder = root
    for part in os.path.relpath(os.path.dirname(path), root).split(os.sep.encode()):
        if part in (b"", b"."):
            continue
        folder = os.path.join(folder, part)
        if os.path.islink(folder):
            return folder
    return None


def failures(conn: Connection, path: bytes) -> list[tuple[str, str, str]]:
    """(model, version, reason) of each model version that failed on the file's picture;
    the reason says where the next scan tries it again (`errors.Kind.retried`)."""
    found = []
    for failed in failed_versions(conn, path):
        again = failed.kind is not None and Kind(failed.kind).retried
        found.append((failed.model, failed.version, failed.error + (RETRIED if again else "")))
    return found


def failed_for(conn: Connection, given: str, path: bytes, model: str) -> str | None:
    """Why `model` has no result for the file, where it tried and failed; else None."""
    reasons = [reason for name, _, reason in failures(conn, path) if name == model]
    return f"{given}: {model} failed on it: {reasons[-1]}" if reasons else None


def file_error(conn: Connection, path: bytes) -> str:
    """Why a file the index lists has no picture: it could not be read, else it has not
    been read yet."""
    row = file_row(conn, path)
    error = row.error if row is not None else None
    return f"cannot be read: {error}" if error else "not read yet (run dtindex scan)"
