"""`Index.status` and `Index.models`: what the index holds, and the models that fill it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Connection

from indexer.config import Config, threshold_or_default
from indexer.core.records import ModelInfo, Models, RootStatus, Status, StoredVersion
from indexer.errors import DtindexError
from indexer.model_tables import ModelTable, builtin_table
from indexer.models.published import family
from indexer.models.versions import identify
from indexer.store.queries import coverage, failed_pictures, failures, roots_summary, totals


def status(conn: Connection, config: Config, database: str, listed: int) -> Status:
    """The roots, the counts and up to `listed` failures of the index on `conn`."""
    roots = tuple(RootStatus(p, n, s) for p, s, n in roots_summary(conn))
    counts = totals(conn)
    failed = tuple(failures(conn, listed + 1))  # one more tells whether there are more
    configured = frozenset({*config.models, *(m.name for m in config.default_models())})
    by_model: dict[str, int] = {}
    apart: dict[str, int] = {}
    pairs = failed_pictures(conn)
    for model, _ in pairs:
        counted = by_model if model in configured else apart
        counted[model] = counted.get(model, 0) + 1
    return Status(
        database=database,
        roots=roots,
        files=int(counts["files"]),
        contents=int(counts["contents"]),
        unreadable=int(counts["unreadable"]),
        failed=len({content for model, content in pairs if model in configured}),
        failed_by_model=by_model,
        failed_unconfigured=apart,
        failures=failed[:listed],
        configured=configured,
        more_failures=len(failed) > listed,
    )


def models(
    config: Config, cache: str, conn: Connection | None, stored: Sequence[StoredVersion]
) -> Models:
    """Each configured model (and the built-in palette), with its coverage where there
    is an index (`conn`), and the versions the index stores."""
    entries = list(config.models.values())
    if "palette" not in config.models:
        entries.append(builtin_table())
    scanned = {m.name for m in config.default_models()}
    infos = tuple(_info(entry, entry.name in scanned, cache, conn) for entry in entries)
    return Models(infos, tuple(stored))


def _info(entry: ModelTable, scanned: bool, cache: str, conn: Connection | None) -> ModelInfo:
    """One model's facts: settings, version, and its coverage of the index."""
    try:
        definition = entry.resolve()
        version, tags = identify(definition, cache)
    except DtindexError as exc:
        return ModelInfo(entry.name, entry.enabled, scanned, error=str(exc))
    spec = definition.spec
    kinds = Counter(c for c in tags.categories if c is not None)
    return ModelInfo(
        name=entry.name,
        enabled=entry.enabled,
        scan=scanned,
        title=definition.title,
        family=family(spec),
        version=version,
        tags=len(tags),
        input=f"{spec.shape} {spec.channels} {spec.size or 'from graph'} {spec.pad}",
        categories=dict(kinds),
        threshold=threshold_or_default(definition.threshold),
        general=definition.general,
        character=definition.character,
        coverage=coverage(conn, entry.name, version) if conn is not None else None,
    )
