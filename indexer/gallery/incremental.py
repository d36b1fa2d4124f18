"""The incremental indexer behind `scan` and `watch`.

A scan walks the roots and compares every file's stat with the index: unchanged files are
not opened; renamed and moved files (same device, inode, size and mtime) keep their
content, their bytes checked unless their inode is older than the last read (a file
system reuses freed inodes: `jobs.is_moved`); new and changed files are read and hashed
(xxh3-128 and SHA-1) by a decoder process; a group of them is recorded and claimed in a
few statements; a content some model version has no result for is decoded (after
checking it is still the bytes that were hashed) into that model's batch. Results are
committed batch by batch, so a killed scan resumes. Failures keep their `Kind`: only a
picture's own fault is final until the file changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from indexer.config import Config
from indexer.errors import Failure, Kind, StoreError
from indexer.gallery.headway import Ledger, Listener, Silent
from indexer.gallery.jobs import Counts, ReadJob, TagJob, record_looked
from indexer.gallery.pending import pending_jobs
from indexer.gallery.unfinished import unread
from indexer.gallery.waiting import wait_for_others
from indexer.gallery.writer import ResultWriter
from indexer.imaging.messages import Looked, Reply, Skipped
from indexer.imaging.workers import DecoderPool
from indexer.models.runtime import Tagger
from indexer.pipeline.device import DeviceChoice, device_for
from indexer.pipeline.fanout import Cluster
from indexer.pipeline.flow import Budget, Order
from indexer.pipeline.inference import Timings
from indexer.pipeline.runner import Local, Runner
from indexer.store.claims import claim_pairs, reap, release_claims, release_pairs
from indexer.store.location import location_of
from indexer.store.owners import owner_for
from indexer.store.records import Records
from indexer.store.retry import UNTRIED, Attempt
from indexer.wording import plural

log = logging.getLogger("dtindex")


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
        progress: Listener | None = None,
        stop: threading.Event | None = None,
        retry_failed: bool = False,
        cluster: Cluster | None = None,
        device: DeviceChoice = device_for,  # the GPU lane's, if any (tests: their decoder)
    ) -> None:
        self.engine, self.taggers, self.config, self.batch = engine, taggers, config, batch
        self.stop, self.retry_failed = stop, retry_failed
        self.listener: Listener = progress or Silent()
        self.budget = Budget.for_machine(config.decoders)
        self.runner: Runner = cluster or Local(self.budget, device(taggers))
        self.decoders = DecoderPool(self.budget.decoders, config.max_pixels, config.decode_timeout)
        self.conn = engine.connect()
        self.index = Records(self.conn)
        self.writer = ResultWriter(location_of(engine), self.index, batch)
        self.version_ids: list[int] = []
        for t in taggers:
            tags = t.tags
            version = (t.name, t.version, t.definition.title, tags.names, tags.categories)
            self.version_ids.append(self.index.model_version(*version, tags.thresholds))
        self._inflight: set[tuple[int, int]] = set()
        self.owner = owner_for(engine)
        reaped = reap(self.index, self.owner)
        if reaped:
            log.info("took over %s of processes that are gone", plural(reaped, "claim"))
        self.attempt = self._attempt()
        self.timings = Timings()  # summed over every `process` call
        self.counts = Counts()  # the current `process` call's
        self.failed_paths: set[bytes] = set()  # the current `process` call's failures
        self.aside: set[bytes] = set()  # and the paths it gave up without a result
        self.ledger = Ledger(self.counts, (), 0)  # the current `process` call's
        self.every_model = tuple(range(len(taggers)))
        # Whether a failure is not recorded but its file put back unread (`unfinished`).
        self.put_back: Callable[[ReadJob, Failure], bool] = lambda job, failure: False

    def close(self) -> None:
        """Commit and release this process's claims; after a failed write (a full disk)
        roll back instead, so the original error is the one reported."""
        self.decoders.close()
        try:
            try:
                self.index.settle()
                self.writer.close()  # claims are released once their results are in
                release_claims(self.index, self.owner)
            except (SQLAlchemyError, StoreError) as exc:
                self.writer.abandon()
                self.index.settle()
                log.debug("claims not released (%s); they die with this process", exc)
        finally:
            self.owner.close()  # a claim left behind is dead from here on
            self.conn.close()

    def _attempt(self) -> Attempt:
        return Attempt(time.time_ns(), self.retry_failed, self.config.max_pixels)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    # -- the pipeline's steps, in the calling thread ---------------------------------
    def look(self, job: ReadJob | TagJob) -> bytes | None:
        if isinstance(job, TagJob):
            return None  # already hashed: its claims are decided straight away
        job.read_ns = time.time_ns()  # no later than the read: the racy window is safe
        return job.path

    def decide(self, group: list[tuple[ReadJob | TagJob, Reply | None]]) -> list[Order[Any]]:
        """Record a group of looked files in bulk and claim what their contents need: one
        short transaction, as the result writer waits on its lock."""
        looked: list[tuple[ReadJob, Looked]] = []
        wanted: list[tuple[ReadJob | TagJob, int, str, tuple[int, ...]]] = []
        with self.index.batch():
            for job, reply in group:
                if isinstance(job, TagJob):
                    wanted.append((job, job.content_id, job.xxh128, job.wanted))
                elif isinstance(reply, Looked):
                    looked.append((job, reply))
                else:
                    self._not_looked(job, reply)
            for (job, seen), content_id in zip(
                looked, record_looked(self.index.conn, looked, self.counts), strict=True
            ):
                wanted.append((job, content_id, seen.xxh128, self.every_model))
            orders = self._claim(wanted)
        self._report()
        return orders

    def _not_looked(self, job: ReadJob, reply: Reply | None) -> None:
        self.ledger.settled()
        if isinstance(reply, Skipped) and reply.vanished:
            if job.known is not None:
                self.index.delete_path(job.path)
                self.counts.removed += 1
        elif isinstance(reply, Skipped):
            self._left(job.path, reply)
            self.aside.add(job.path)
        else:
            failure = reply if isinstance(reply, Failure) else Failure("no answer", Kind.CRASH)
            self._count_failure(job.path, failure)
            self.index.put_file(
                job.path, job.root_id, job.stat, None, job.read_ns, failure.reason, failure.kind
            )

    def _claim(
        self, wanted: list[tuple[ReadJob | TagJob, int, str, tuple[int, ...]]]
    ) -> list[Order[Any]]:
        """Models this process will run on each content: not queued here, not held
        elsewhere, not settled; a content listed twice is given to its first job."""
        pairs = [
            (self.version_ids[i], content_id)
            for _, content_id, _, models in wanted
            for i in models
            if (content_id, i) not in self._inflight
        ]
        mine = claim_pairs(self.index, pairs, self.owner, self.attempt)
        orders: list[Order[Any]] = []
        for job, content_id, xxh, models in wanted:
            given = []
            for i in models:
                pair = (content_id, i)
                if (self.version_ids[i], content_id) in mine and pair not in self._inflight:
                    self._inflight.add(pair)
                    given.append(i)
            self.ledger.given(content_id, len(given))
            orders.append(Order(job, job.path, xxh, tuple(given)))
        self.writer.coming(sum(len(order.wanted) > 0 for order in orders))
        return orders

    def _report(self) -> None:
        self.listener.update(self.counts, self.ledger.headway)

    def unprepared(self, order: Order[Any], why: Failure | Skipped) -> None:
        job = order.job
        if isinstance(why, Skipped):
            self._left(job.path, why)
            release_pairs(self.index, [(self.version_ids[i], job.content_id) for i in order.wanted])
            self._set_aside(order)
        elif isinstance(job, ReadJob) and self.put_back(job, why):
            unread(self.index, job, [self.version_ids[i] for i in order.wanted], self.counts)
            self._set_aside(order)
        else:
            versions = [self.version_ids[i] for i in order.wanted]
            self._fail(job.path, why, versions, job.content_id)
        self.ledger.came(job.content_id, len(order.wanted))

    def _set_aside(self, order: Order[Any]) -> None:
        """Claims given up: the content may be tagged through its other paths (`pending`)."""
        self.aside.add(order.path)
        self._inflight.difference_update((order.job.content_id, i) for i in order.wanted)

    def _left(self, path: bytes, why: Skipped) -> None:
        """A file saved again while read: the index is not complete until a scan reads it."""
        log.warning("%s: %s; left for the next scan", os.fsdecode(path), why.reason)
        self.counts.to_retry += 1

    def scores(
        self,
        i: int,
        jobs: list[Any],
        matrix: NDArray[np.float32],
        embeddings: NDArray[np.float32] | None,
    ) -> None:
        ids = [int(job.content_id) for job in jobs]
        floor = self.config.store_threshold
        self.writer.put(self.version_ids[i], ids, matrix, floor, embeddings)
        self.ledger.scored(self.taggers[i].name, ids)
        self._report()

    def failed(self, i: int, job: Any, failure: Failure) -> None:
        self._fail(job.path, failure, [self.version_ids[i]], job.content_id)
        self.ledger.came(job.content_id, 1)

    def _fail(
        self, path: bytes, failure: Failure, version_ids: Iterable[int], content_id: int
    ) -> None:
        """Record a picture's failure for these versions, unless a stop caused it."""
        if self._stopping() and failure.kind in _STOP_VICTIMS:
            log.debug("%s: %s while stopping; not recorded", os.fsdecode(path), failure.reason)
            return
        self._count_failure(path, failure)
        with self.index.batch():  # committed now: the result writer waits on its lock
            for version_id in version_ids:
                self.index.record_failure(version_id, content_id, failure)

    def _count_failure(self, path: bytes, failure: Failure) -> None:
        self.counts.failed += 1
        self.counts.to_retry += failure.kind.retried
        self.failed_paths.add(path)
        log.warning("%s: %s", os.fsdecode(path), failure.reason)

    def process(
        self, reads: Sequence[ReadJob], counts: Counts, pending: bool = True,
        wait: bool = False, touched: Iterable[int] = (),
    ) -> None:  # fmt: skip
        """Read and tag the given files, then the contents missing a result: every one
        (`pending`), else those never tried among the contents of the files read and
        `touched` (a watch's batch: the contents of the files it moved or found gone);
        with `wait`, also those other processes hold (`gallery.waiting`)."""
        self.attempt = self._attempt()  # failures from before this call are retried
        self.counts = counts
        self.failed_paths, self.aside = set(), set()
        self.ledger = Ledger(counts, (t.name for t in self.taggers), len(reads))
        self._inflight.clear()
        self._run(reads)
        if not self._stopping():
            read = (job.content_id for job in reads if job.content_id is not None)
            self._tag_pending(None if pending else [*read, *touched])
            if pending and wait:
                ids, stop = self.version_ids, self.stop
                wait_for_others(self.index, ids, self.owner, self.attempt, counts,
                                self._tag_pending, stop)  # fmt: skip
        self._report()

    def _tag_pending(self, among: Collection[int] | None = None) -> None:
        attempt = self.attempt if among is None else UNTRIED
        waiting = pending_jobs(self.index, self.version_ids, attempt, among, self.aside)
        self.ledger.headway.known += len(waiting)
        self._run(waiting)

    def _run(self, jobs: Sequence[ReadJob] | Sequence[TagJob]) -> None:
        self.runner.run(self.taggers, jobs, self, self.decoders, self.batch,
                        stop=self.stop, timings=self.timings, idle=self.index.settle)  # fmt: skip
        self.writer.flush()  # the run's results are in before it is counted or read
