"""Model versions: a hash of the graph, the tag list and the preparation settings.

Change any of them and the model's pictures are tagged again under the new version.
Hashing a 350 MB graph costs a third of a second at every start, so the graph's digest
is cached by path, size, mtime and inode (as a scan trusts a file's stat).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from indexer.config import Config
from indexer.errors import DtindexError, ModelError
from indexer.model_tables import ModelDef
from indexer.models.taglist import TagList, read_taglist
from indexer.preparation import ModelSpec

CACHE_FILE = "onnx-digests.json"
CACHE_ENTRIES = 200


def version_hash(onnx_digest: bytes, tag_bytes: bytes, spec: ModelSpec, variant: str = "") -> str:
    """A copy's scores differ from fp32's (fp16's in the third decimal, int8's by what the
    weights allow), so a run on a copy (`variant`: "fp16" or "int8") is its own version."""
    digest = hashlib.sha256()
    for part in (
        onnx_digest,
        hashlib.sha256(tag_bytes).digest(),
        hashlib.sha256(spec.canonical().encode()).digest(),
    ):
        digest.update(part)
    if variant:
        digest.update(variant.encode())  # b"fp16": versions stored before int8 existed
    return digest.hexdigest()[:16]


def _weights(path: Path) -> list[Path]:
    """The graph, and its weights where they live beside it (`model.onnx.data`, as ONNX
    writes graphs over 2 GB): new weights under the same graph are a new version."""
    data = path.with_name(path.name + ".data")
    return [path, data] if data.is_file() else [path]


def onnx_digest(path: Path, cache_dir: str = "") -> bytes:
    """SHA-256 of the graph file (and its external weights), from the cache when their
    stat is unchanged."""
    parts = _weights(path)
    try:
        infos = [part.stat() for part in parts]
    except FileNotFoundError:
        raise ModelError(f"{path}: model file not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model: {exc.strerror or exc}") from None
    key = "|".join(
        f"{p.resolve()}|{i.st_size}|{i.st_mtime_ns}|{i.st_ino}"
        for p, i in zip(parts, infos, strict=True)
    )
    cache = Path(cache_dir) / CACHE_FILE if cache_dir else None
    table: dict[str, str] = {}
    if cache is not None:
        try:
            table = json.loads(cache.read_text(encoding="utf-8"))
            return bytes.fromhex(table[key])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass
    digest = hashlib.sha256()
    try:
        for part in parts:
            with open(part, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model: {exc.strerror or exc}") from None
    if cache is not None:
        table = dict(list(table.items())[-(CACHE_ENTRIES - 1) :]) if isinstance(table, dict) else {}
        table[key] = digest.hexdigest()
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(table), encoding="utf-8")
            os.replace(temporary, cache)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return digest.digest()


def identify(
    model: ModelDef, cache_dir: str = "", digest: bytes | None = None
) -> tuple[str, TagList]:
    """The version and tag list of a model, without starting a session (`digest`: the
    graph's, when the caller already has it)."""
    tags, tag_bytes = read_taglist(model.tags)
    digest = digest if digest is not None else onnx_digest(model.onnx, cache_dir)
    return version_hash(digest, tag_bytes, model.spec, model.variant), tags


def configured_version(config: Config, name: str, cache_dir: str = "") -> str | None:
    """The version the config describes now for model `name`, without starting a session.

    None when the config does not name the model or its files cannot be read; callers
    then fall back to the newest stored version (see `store.current`).
    """
    try:
        entry = config.model(name)
        return identify(entry.resolve(), cache_dir)[0]
    except DtindexError:
        return None
