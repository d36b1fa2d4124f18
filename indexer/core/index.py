"""`Index`: the one object every command and every Python caller works through.

    from indexer import Index
    with Index.open("~/index.sqlite") as index:
        index.scan(["~/gallery"])
        for path in index.search("1girl -solo"):
            print(path)

Opened once from a database location and a config, it owns what the CLI used to
assemble in each command: the config, the runtime options with their caches, the root
normalisation (`~` expanded, absolute), and the database engines, opened when a method
first needs one (read-only for the readers, so `status` creates no index) and closed by
`close` or on leaving a `with` block. Its methods return the records of `core.records`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from sqlalchemy import Connection

from indexer.config import Config, Decode
from indexer.core import choosing, exporting, listing, places, reading, scanning
from indexer.core.connections import Connections
from indexer.core.places import PathLike
from indexer.core.records import (
    Exported,
    Forgotten,
    Models,
    Near,
    Pruned,
    Rules,
    Shown,
    Status,
    StoredVersion,
)
from indexer.errors import UsageError
from indexer.export.files import Written
from indexer.export.selection import Edits
from indexer.export.thresholds import RATING
from indexer.export.xmp import hierarchy
from indexer.gallery.following import Totals, WatchListener, WatchOptions
from indexer.gallery.headway import Listener
from indexer.gallery.jobs import Counts
from indexer.gallery.scanning import scan_roots
from indexer.gallery.watching import watch
from indexer.models.runtime import RuntimeOptions, Tagger
from indexer.models.versions import configured_version
from indexer.pipeline.fanout import Cluster
from indexer.store.engine import index_exists
from indexer.store.location import Location
from indexer.store.maintenance import forget_roots, model_names, prune, vacuum
from indexer.store.queries import categories, versions
from indexer.store.records import Records
from indexer.store.search import search, tag_names

log = logging.getLogger("dtindex")


class Index(Connections):
    """An index database with the config and runtime options it is worked with."""

    def __init__(
        self, location: Location, config: Config, env: Mapping[str, str], runtime: RuntimeOptions
    ) -> None:
        super().__init__(location)
        self.config, self.env, self.runtime = config, env, runtime

    @classmethod
    def open(
        cls,
        db: PathLike | None = None,
        config: Config | PathLike | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cpu: bool = False,
        provider_options: Sequence[tuple[str, tuple[tuple[str, str], ...]]] = (),
        decode: Decode | None = None,
    ) -> Index:
        """The index at `db` (a path, `~` allowed, or a PostgreSQL URL; None: as the CLI
        finds it: `DTINDEX_DB`, the config's `database`, the XDG data folder) with
        `config` (a Config, a deeptagger.toml, or None: as the CLI finds it). `env`
        stands for `os.environ`. Nothing is opened until a method needs it."""
        environ = dict(os.environ if env is None else env)
        settings = places.settings(config, environ)
        options = places.runtime(settings, environ, cpu, provider_options, decode)
        return cls(places.database(db, environ, settings), settings, environ, options)

    @property
    def cache(self) -> str:
        return str(places.cache_folder(self.env))

    def current_version(self, model: str) -> str | None:
        """The configured version of `model` for readers; None: the newest stored counts.

        A configured model whose files cannot be read is reported, since a reader then
        cannot tell a setting tried and undone from the one in force.
        """
        version = configured_version(self.config, model, self.cache)
        if version is None and model in self.config.models:
            log.warning("%s: model files cannot be read; using its newest stored results", model)
        return version

    def status(self, failures: int = 20) -> Status:
        """The roots, the counts, and up to `failures` failed pictures with the reasons."""
        with self.reading() as conn:
            return listing.status(conn, self.config, self.database, failures)

    def show(self, path: PathLike, threshold: float = 0.1) -> Shown:
        """A picture's stored tags above `threshold`, per model, and the failures."""
        limit = choosing.threshold_value(threshold, 0.1)
        with self.reading() as conn:
            return reading.show(
                conn, os.fspath(path), places.key(path), limit, self.current_version,
                self.config.scan.extensions,
            )  # fmt: skip

    def similar(self, path: PathLike, model: str | None = None, n: int = 10) -> list[Near]:
        """The `n` pictures most like the one at `path`, by `model`'s stored embeddings
        (default: the one configured model that stores them), best first."""
        if n < 1:
            raise UsageError(f"-n {n}: give a positive number of pictures")
        chosen = choosing.embedding_model(self.config, model)
        with self.reading() as conn:
            return reading.similar(
                conn, os.fspath(path), places.key(path), chosen, n,
                self.current_version(chosen), self.config.scan.extensions,
            )  # fmt: skip

    def search(
        self, query: str, model: str | None = None, any_of: bool = False, rules: Rules | None = None
    ) -> list[bytes]:
        """Paths of the files whose stored tags match `query` (`1girl -solo
        rating:general`; `any_of`: any wanted tag rather than all), a tag being had where
        the export gives it (the model table's thresholds, or those `rules` ask for)."""
        wanted, unwanted, ratings = choosing.parse_query(query)
        with self.reading() as conn:
            chosen = self._indexed_model(conn, model)
            present = categories(conn, chosen)
            if ratings and RATING not in present:
                raise UsageError(f"model {chosen!r} has no ratings (rating:{ratings[0]})")
            choosing.check_names(chosen, tag_names(conn, chosen), [*wanted, *unwanted])
            limits = choosing.thresholds(self.config, chosen, rules or Rules(), present)
            current = self.current_version(chosen)
            return search(conn, chosen, current, wanted, unwanted, limits.limit, any_of)

    def prune(self, vacuum_after: bool = False) -> Pruned:
        """Drop the contents no file shows and the model versions nothing exports."""
        engine = self.engine(create=False)
        # Hashing a graph can take a while: done before the write transaction starts. The
        # version an export would take as configured, by the export's own rule.
        configured = {name: self.current_version(name) for name in model_names(engine)}
        done = prune(engine, configured)
        if vacuum_after:
            vacuum(engine)
        return done

    def forget(self, roots: Sequence[PathLike]) -> Forgotten:
        """Drop `roots` (which need not exist any more) and their files from the index."""
        return forget_roots(self.engine(create=False), [places.key(root) for root in roots])

    def models(self) -> Models:
        """The config's models (and the built-in palette), their versions and coverage,
        and the versions the index stores. No index yet: no coverage, nothing stored."""
        if not index_exists(self.location):
            return listing.models(self.config, self.cache, None, ())
        with self.reading() as conn:
            stored = [StoredVersion(*row) for row in versions(conn)]
            return listing.models(self.config, self.cache, conn, stored)

    def export(
        self,
        model: str | None = None,
        *,
        rules: Rules | None = None,
        edits: Edits | None = None,
        since: int | None = None,
        with_paths: bool = True,
    ) -> Iterator[Exported]:
        """Each picture `model` (default: the only one indexed) tagged, with the tags
        that pass the thresholds (the model table's, or those `rules` ask for), as
        `dtindex export` prints them; `since`: only results recorded at or after it (ns
        since the epoch). The model, the thresholds and the tags `edits` name are checked
        here, before the first record."""
        edits = edits or exporting.NO_EDITS
        with self.reading() as conn:
            chosen = exporting.plan(
                conn, self.config, model, rules or Rules(), since, self.current_version, edits
            )
        return self._exported(chosen, edits, with_paths)

    def _exported(
        self, chosen: exporting.ExportPlan, edits: Edits, with_paths: bool
    ) -> Iterator[Exported]:
        with self.reading() as conn:
            yield from exporting.records(conn, chosen, edits, with_paths)

    def write_files(
        self,
        fmt: str,
        model: str | None = None,
        *,
        rules: Rules | None = None,
        edits: Edits | None = None,
        since: int | None = None,
        out: PathLike | None = None,
        replace_existing: bool = False,
        xmp_prefix: str | None = None,
    ) -> Written:
        """The export as files (`captions`, `xmp`, `hydrus`) beside each picture, or
        mirrored under `out`; files dtindex did not write are replaced only with
        `replace_existing`, XMP sidecars are merged into. What became of them."""
        levels = hierarchy(xmp_prefix)
        folder = os.fspath(places.absolute(out)) if out is not None else None
        edits = edits or exporting.NO_EDITS
        with self.reading() as conn:
            chosen = exporting.plan(
                conn, self.config, model, rules or Rules(), since, self.current_version, edits
            )
            return exporting.write(
                conn, chosen, edits, fmt, folder, levels, replace_existing,
                self.config.scan.extensions,
            )  # fmt: skip

    def taggers(self, models: Sequence[str] = ()) -> list[Tagger]:
        """`models` from the config (default: the enabled ones, else the built-in
        palette), loaded with this index's runtime options and caches."""
        return scanning.taggers(self.config, self.runtime, models)

    def cluster(self, address: str, ship: bool = False) -> Cluster:
        """A Ray cluster for `scan` (`local`: started here); close it when done."""
        return scanning.cluster(address, self.config, self.runtime, ship)

    def scan(
        self,
        roots: Sequence[PathLike] = (),
        *,
        models: Sequence[str | Tagger] = (),
        batch: int | None = None,
        progress: Listener | None = None,
        stop: threading.Event | None = None,
        allow_empty: bool = False,
        retry_failed: bool = False,
        cluster: Cluster | None = None,
    ) -> Counts:
        """Bring the index up to date with `roots` (default: the config's, else those
        indexed; `~` expanded) and tag what `models` have not (names, or `taggers`;
        default: the enabled ones). `progress` hears the reading and tagging; setting
        `stop` ends the scan after the batch in flight (a rerun resumes). The counts."""
        loaded, size = self._loaded(models), choosing.batch_size(batch, self.config)
        return scan_roots(
            self.engine(), self._roots(roots), loaded, self.config, size, progress,
            allow_empty=allow_empty, stop=stop, retry_failed=retry_failed, cluster=cluster,
        )  # fmt: skip

    def watch(
        self,
        roots: Sequence[PathLike] = (),
        *,
        models: Sequence[str | Tagger] = (),
        batch: int | None = None,
        options: WatchOptions | None = None,
        listener: WatchListener | None = None,
        stop: threading.Event | None = None,
    ) -> Totals:
        """Catch up with `roots` (chosen as `scan` chooses them), then tag pictures as
        they arrive, until `stop` is set (the batch in flight is finished). `listener`
        hears each rescan and settled batch; each rescan marks the roots scanned (see
        `status`). One watch per SQLite index. What was done since start; its
        `caught_up` is False when `stop` came before the catch-up went through."""
        chosen = options or WatchOptions()
        chosen.check()  # before a model is loaded
        loaded, size = self._loaded(models), choosing.batch_size(batch, self.config)
        return watch(
            self.engine(), self.location, self._roots(roots), loaded, self.config, size,
            chosen, listener, stop,
        )  # fmt: skip

    def _loaded(self, models: Sequence[str | Tagger]) -> list[Tagger]:
        names = [m for m in models if isinstance(m, str)]
        loaded = [m for m in models if not isinstance(m, str)]
        return loaded + self.taggers(names) if names or not loaded else loaded

    def _roots(self, asked: Sequence[PathLike]) -> list[Path]:
        with self.engine().connect() as conn:
            indexed = Records(conn).root_paths()
        return scanning.chosen_roots(asked, self.config, indexed)

    def _indexed_model(self, conn: Connection, asked: str | None) -> str:
        return choosing.indexed_model((m for m, _, _, _ in versions(conn)), asked)
