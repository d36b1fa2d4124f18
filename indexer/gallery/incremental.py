"""The incremental indexer behind `scan` and `watch`.

A scan walks the roots and compares every file's stat with the index: unchanged files are
not opened; renamed and moved files (same device, inode, size and mtime) keep their
content; new and changed files are read once, hashed (xxh3-128 and SHA-1 from the same
bytes) and, when some model version has no result for that content, decoded from those
same bytes and tagged. Results are committed batch by batch, so a killed scan resumes.
Failures keep their `Kind`: only a picture's own fault is final until the file changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import xxhash
from numpy.typing import NDArray
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from indexer.config import Config
from indexer.errors import DecodeError, Failure, Kind, os_error_kind
from indexer.gallery.jobs import Counts, ReadJob, TagJob, Unstable, read_stable
from indexer.imaging.workers import DecoderPool
from indexer.models.runtime import Tagger
from indexer.pipeline import Budget, Prepared, Timings, prepare_for, run_pipeline
from indexer.store.claims import Owner, claim, claims_folder, reap, release_claims
from indexer.store.records import Records
from indexer.store.retry import Attempt
from indexer.store.schema import contents, taggings

log = logging.getLogger("dtindex")


ProgressFn = Callable[[str, Counts], None]
# A decoder killed or timed out while the process is being stopped failed because of
# the stop, not the picture: such failures are not recorded.
_STOP_VICTIMS = (Kind.CRASH, Kind.TIMEOUT)


class Indexer:
    """Records files and contents and tags what is missing, for a set of loaded models."""

    def __init__(
        self,
        engine: Engine,
        taggers: Sequence[Tagger],
        config: Config,
        batch: int,
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        log_batches: bool = False,
        retry_failed: bool = False,
    ) -> None:
        self.engine, self.taggers, self.config, self.batch = engine, taggers, config, batch
        self.stop, self.log_batches, self.retry_failed = stop, log_batches, retry_failed
        self.progress = progress or (lambda phase, counts: None)
        self.budget = Budget.for_machine(config.decoders)
        self.decoders = DecoderPool(self.budget.decoders, config.max_pixels, config.decode_timeout)
        self.conn = engine.connect()
        self.index = Records(self.conn)
        self.version_ids = [
            self.index.model_version(
                t.name, t.version, t.definition.title, t.tags.names, t.tags.categories
            )
            for t in taggers
        ]
        self._inflight: set[tuple[int, int]] = set()
        self.owner = Owner(claims_folder(engine))
        reaped = reap(self.index, self.owner.folder)
        if reaped:
            log.info("took over %d claims of processes that are gone", reaped)
        self.attempt = self._attempt()
        self.timings = Timings()  # summed over every `process` call

    def close(self) -> None:
        """Commit and release this process's claims; after a failed write (a full disk)
        roll back instead, so the original error is the one reported."""
        self.decoders.close()
        try:
            try:
                self.index.commit()
                release_claims(self.index, self.owner)
            except SQLAlchemyError as exc:
                self.conn.rollback()
                log.debug("claims not released (%s); they die with this process", exc)
        finally:
            self.owner.close()  # a claim left behind is dead from here on
            self.conn.close()

    def _attempt(self) -> Attempt:
        return Attempt(time.time_ns(), self.retry_failed, self.config.max_pixels)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    # -- worker side (threads): read, hash, decide, decode ------------------------
    def _wanted(self, xxh128: str) -> list[int]:
        with self.engine.connect() as conn:
            query = (
                select(taggings.c.model_version_id)
                .join(contents, contents.c.id == taggings.c.content_id)
                .where(
                    contents.c.xxh128 == xxh128,
                    self.attempt.settled(),
                )
            )
            settled = set(conn.execute(query).scalars())
        return [i for i, v in enumerate(self.version_ids) if v not in settled]

    def _read_work(self, job: ReadJob) -> Prepared[ReadJob]:
        job.read_ns = time.time_ns()
        try:
            data, stat = read_stable(job.path)
        except FileNotFoundError:
            return Prepared(job, error="vanished", info={"vanished": True})
        except Unstable:
            return Prepared(job, error="changed while being read", info={"unstable": True})
        except OSError as exc:
            return Prepared(
                job, error=f"cannot read: {exc.strerror or exc}", kind=os_error_kind(exc)
            )
        job.stat = stat
        info: dict[str, object] = {
            "xxh": xxhash.xxh3_128_hexdigest(data),
            "sha1": hashlib.sha1(data).hexdigest(),
        }
        wanted = self._wanted(str(info["xxh"]))
        info["wanted"] = wanted
        try:
            pictures, size = prepare_for(self.decoders, data, self.taggers, wanted)
        except DecodeError as exc:
            return Prepared(job, error=str(exc), info=info, kind=exc.kind, needs=exc.needs)
        info["size"] = size
        return Prepared(job, pictures, info=info)

    def _tag_work(self, job: TagJob) -> Prepared[TagJob]:
        try:
            with open(job.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            return Prepared(job, error=f"cannot read: {exc.strerror or exc}", info={"skip": True})
        if xxhash.xxh3_128_hexdigest(data) != job.xxh128:
            return Prepared(job, error="changed since it was indexed", info={"skip": True})
        pictures, _ = prepare_for(self.decoders, data, self.taggers, job.wanted)
        return Prepared(job, pictures)

    # -- main thread: record ------------------------------------------------------
    def _claim(self, content_id: int, wanted: Iterable[int]) -> list[int]:
        """Models this process will run on the content: not queued here, not held elsewhere."""
        claimed = []
        for i in wanted:
            if (content_id, i) in self._inflight:
                continue
            version_id = self.version_ids[i]
            if not claim(self.index, version_id, content_id, self.owner, self.attempt):
                log.debug("content %d: tagged or being tagged by another process", content_id)
                continue
            self._inflight.add((content_id, i))
            claimed.append(i)
        return claimed

    def _fail(
        self,
        counts: Counts,
        path: bytes,
        failure: Failure,
        version_ids: Iterable[int],
        content_id: int,
    ) -> None:
        """Record a picture's failure for these versions, unless a stop caused it."""
        if self._stopping() and failure.kind in _STOP_VICTIMS:
            log.debug("%s: %s while stopping; not recorded", os.fsdecode(path), failure.reason)
            return
        counts.failed += 1
        counts.to_retry += failure.kind.retried
        log.warning("%s: %s", os.fsdecode(path), failure.reason)
        for version_id in version_ids:
            self.index.record_failure(version_id, content_id, failure)

    def _accept_read(self, prepared: Prepared[ReadJob], counts: Counts) -> list[int]:
        job, info = prepared.job, prepared.info
        if info.get("vanished"):
            if job.known is not None:
                self.index.delete_path(job.path)
                counts.removed += 1
            return []
        if info.get("unstable"):
            log.warning(
                "%s: changed while being read; left for the next scan", os.fsdecode(job.path)
            )
            return []
        if "xxh" not in info:  # could not be read at all
            counts.failed += 1
            counts.to_retry += prepared.kind.retried
            log.warning("%s: %s", os.fsdecode(job.path), prepared.error)
            self.index.put_file(
                job.path, job.root_id, job.stat, None, job.read_ns, prepared.error, prepared.kind
            )
            return []
        counts.hashed += 1
        size = info.get("size")
        width, height = size if isinstance(size, tuple) else (None, None)
        content_id = self.index.add_content(
            str(info["xxh"]), str(info["sha1"]), job.stat.size, width, height
        )
        job.content_id = content_id
        if job.known is None:
            counts.new += 1
        elif job.known.content_id == content_id:
            counts.unchanged += 1
        else:
            counts.changed += 1
        self.index.put_file(job.path, job.root_id, job.stat, content_id, job.read_ns)
        wanted = self._claim(content_id, info.get("wanted", []))  # type: ignore[arg-type]
        if prepared.error is not None:
            versions = [self.version_ids[i] for i in wanted]
            self._fail(counts, job.path, prepared.failure(), versions, content_id)
            return []
        return wanted

    def _accept_tag(self, prepared: Prepared[TagJob], counts: Counts) -> list[int]:
        job = prepared.job
        if prepared.info.get("skip"):
            log.warning("%s: %s; left for the next scan", os.fsdecode(job.path), prepared.error)
            return []
        wanted = self._claim(job.content_id, job.wanted)
        if prepared.error is not None:
            versions = [self.version_ids[i] for i in wanted]
            self._fail(counts, job.path, prepared.failure(), versions, job.content_id)
            return []
        return wanted

    def process(self, reads: Sequence[ReadJob], counts: Counts, pending: bool = True) -> None:
        """Read and tag the given files, then (with `pending`) every content missing a result."""
        self.attempt = self._attempt()  # failures from before this call are retried

        def on_scores(
            i: int, jobs: list[ReadJob] | list[TagJob], matrix: NDArray[np.float32]
        ) -> None:
            ids = [int(job.content_id) for job in jobs if job.content_id is not None]
            self.index.record_scores(self.version_ids[i], ids, matrix, self.config.store_threshold)
            counts.tagged += len(ids)
            self.progress("tagging", counts)
            if self.log_batches:
                log.info("%s: tagged %d pictures", self.taggers[i].name, len(ids))

        def on_fail(i: int, job: ReadJob | TagJob, failure: Failure) -> None:
            assert job.content_id is not None
            self._fail(counts, job.path, failure, [self.version_ids[i]], job.content_id)

        def accept_read(p: Prepared[ReadJob]) -> list[int]:
            wanted = self._accept_read(p, counts)
            self.progress("hashing", counts)
            return wanted

        self._inflight.clear()
        common = dict(batch=self.batch, budget=self.budget, stop=self.stop, timings=self.timings)
        run_pipeline(
            self.taggers,
            reads,
            self._read_work,
            accept_read,
            on_scores,  # type: ignore[arg-type]
            on_fail,
            idle=self.index.commit,
            **common,  # type: ignore[arg-type]
        )
        self.index.commit()
        if not pending or self._stopping():
            return
        run_pipeline(
            self.taggers,
            self._pending(),
            self._tag_work,  # type: ignore[arg-type]
            lambda p: self._accept_tag(p, counts),
            on_scores,
            on_fail,
            idle=self.index.commit,
            **common,  # type: ignore[arg-type]
        )
        self.index.commit()

    def _pending(self) -> list[TagJob]:
        wanted: dict[int, TagJob] = {}
        for i, version_id in enumerate(self.version_ids):
            rows = self.index.unsettled(version_id, self.attempt)
            for content_id, path, xxh in rows:
                job = wanted.setdefault(content_id, TagJob(path, content_id, xxh, ()))
                job.wanted = (*job.wanted, i)
        return list(wanted.values())
