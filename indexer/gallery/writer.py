"""The process that stores a scan's scores, so the scan's own process never writes a row
of them.

A WD-size model keeps about 150 scores per picture. Written by the scan's process, their
rows cost it about 0.9 ms of CPU per picture (SQLite's B-tree and index inserts, not
Python), which caps a scan near a thousand pictures per second whatever the GPU does.
Here each batch's score matrix goes through a pipe to a writer process, which selects
the scores worth keeping and writes them with the batch's taggings and claim releases in
one transaction of its own connection, as `Records.record_scores` always did. The
matrix (2.3 MB for a WD batch of 64) crosses out of band, written to the pipe straight
from the array (`messages.send`): pickled into one message, it was copied twice more on
the scan's side, about 0.5 ms of its CPU a batch.

Rules that keep the index true:
- The scan's writes are batches (`store.unit`) committed before anything that can wait
  on the writer (a send into a full pipe, a flush), so the two never wait on each
  other's locks.
- The scan flushes at the end of every run and before it reads what is settled, so a
  run's counts, and an exit status, are given only once its results are committed.
- A failed write (a full disk) is sent back (a `Failure`) and raised in the scan as the
  database's own error; the writer stops there, and the rest of the run's results stay unclaimed for
  the next scan.
- The writer ignores the stop signals a process group gets (the scan decides how to
  stop) and, when the scan dies, commits what it was sent and exits: every batch it has
  is whole.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from indexer.errors import Failure, Kind, StoreError
from indexer.imaging.messages import (
    Close,
    Flush,
    Flushed,
    Message,
    Ready,
    Scores,
    receive,
    send,
)
from indexer.imaging.spawning import Worker, ignore_stop_signals, start_worker
from indexer.store.connect import reopen
from indexer.store.location import Location
from indexer.store.records import Records

log = logging.getLogger("dtindex")

# Batches received and not yet written: bounds the writer's memory (a WD batch of 64 is
# 2.3 MB) while letting the scan run ahead of a slow write.
_AHEAD = 4
# Pictures per transaction: the scan's own short writes wait for at most one of these
# (a few milliseconds), not for a whole batch.
_CHUNK = 16
# How long a flush or a close may wait for the writer before it is declared stuck.
_PATIENCE_S = 600.0


class WriterFailed(StoreError):
    """The writer process died without saying why (it was killed)."""


class ResultWriter:
    """The scan's side: hand batches over, flush, close; the writer's errors raised here.

    The writer is started once more than a batch of pictures is claimed for tagging (its
    start costs half a second of CPU on another core), and used once it says it is
    ready; until then, and in runs of one batch, the scan writes the scores itself
    through `records`, as it always did.
    """

    def __init__(self, where: Location, records: Records, batch: int) -> None:
        self._where, self._records, self._batch = where, records, batch
        self._process: Worker | None = None
        self._conn: Connection | None = None
        self._ready = self._closed = False
        self._coming = self._flushes = 0

    def coming(self, pictures: int) -> None:
        """`pictures` more were claimed for tagging: start the writer if it will pay."""
        self._coming += pictures
        if self._process is None and self._coming > self._batch:
            self._start()

    def put(
        self,
        version_id: int,
        content_ids: Sequence[int],
        matrix: NDArray[np.float32],
        floor: float,
        embeddings: NDArray[np.float32] | None,
    ) -> None:
        """Store a batch's results: committed here, or handed to the writer (the caller's
        own writes are committed by their batches, so the writer never waits on our lock)."""
        if self._conn is not None:
            self._drain()
        if not self._ready:
            self._records.record_scores(version_id, content_ids, matrix, floor, embeddings)
            return
        self._records.settle()
        self._send(Scores(version_id, tuple(content_ids), matrix, floor, embeddings))

    def flush(self) -> None:
        """Wait until everything handed over is committed; raise what went wrong."""
        self._records.settle()
        if not self._ready:
            return
        self._flushes += 1
        token = self._flushes
        self._send(Flush(token))
        while self._receive() != Flushed(token):
            pass

    def close(self) -> None:
        """Flush and stop the writer; raise what went wrong (once)."""
        if self._closed:
            return
        self._closed = True
        if self._conn is None:
            return
        try:
            self.flush()
            if self._ready:
                self._send(Close())
        finally:
            self._stop(kill=not self._ready)  # one not ready yet was sent nothing

    def abandon(self) -> None:
        """Stop the writer after a failure elsewhere: what it was sent is still written
        (it commits what it has when the pipe closes), nothing is raised."""
        if not self._closed:
            self._closed = True
            if self._conn is not None:
                self._stop(kill=not self._ready)

    def _start(self) -> None:
        # the stop signals held while it starts: see spawning
        self._process, self._conn = start_worker(_serve, self._where)
        log.debug("index writer started (pid %d)", self._process.pid)

    def _stop(self, kill: bool) -> None:
        assert self._conn is not None and self._process is not None
        self._conn.close()
        if kill:
            self._process.kill()
        self._process.join(_PATIENCE_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    # -- the pipe ---------------------------------------------------------------
    def _send(self, message: Message) -> None:
        assert self._conn is not None
        try:
            send(self._conn, message)
        except OSError:  # the writer is gone: what it said, else that it died
            self._drain()
            raise self._died() from None

    def _receive(self) -> Message:
        assert self._conn is not None
        if not self._conn.poll(_PATIENCE_S):
            raise WriterFailed(f"the index writer has not answered in {_PATIENCE_S:g} s")
        try:
            reply = receive(self._conn)
        except (EOFError, OSError):
            raise self._died() from None
        if isinstance(reply, Failure):
            raise _as_database_error(reply.reason)
        if isinstance(reply, Ready):
            self._ready = True
            log.debug("index writer ready (pid %d)", self._process.pid if self._process else 0)
        return reply

    def _drain(self) -> None:
        """Take what the writer has said (ready; an error, raised) without waiting."""
        assert self._conn is not None
        try:
            while self._conn.poll(0):
                self._receive()
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> WriterFailed:
        assert self._process is not None
        return WriterFailed(
            f"the index writer died ({self._process.ended()}); results not yet stored are "
            "tagged again by the next scan"
        )


def _as_database_error(text: str) -> OperationalError:
    """The writer's database error as the scan's own would read (a full disk included)."""
    return OperationalError("(results of a batch)", None, Exception(text))


# -- the writer process ----------------------------------------------------------------
def _serve(conn: Connection, where: Location) -> None:
    ignore_stop_signals()  # they started blocked (see imaging.spawning)
    inbox: queue.Queue[Message | None] = queue.Queue(_AHEAD)
    threading.Thread(target=_receive_into, args=(conn, inbox), daemon=True).start()
    engine = reopen(where)
    with engine.connect() as db:
        records = Records(db)
        _reply(conn, Ready())
        try:
            _write_all(inbox, records, conn)
        except SQLAlchemyError as exc:  # its batch was rolled back
            detail = getattr(exc, "orig", None) or exc
            _reply(conn, Failure(str(detail), Kind.IO))
    engine.dispose()


def _receive_into(conn: Connection, inbox: queue.Queue[Message | None]) -> None:
    """Read the pipe as fast as it fills, so a send waits only when the inbox is full;
    None when the scan is gone (its end of the pipe closed)."""
    while True:
        try:
            message = receive(conn)
        except (EOFError, OSError):
            inbox.put(None)
            return
        inbox.put(message)
        if isinstance(message, Close):
            return


def _write_all(inbox: queue.Queue[Message | None], records: Records, conn: Connection) -> None:
    while True:
        message = inbox.get()
        if message is None or isinstance(message, Close):
            return
        if isinstance(message, Flush):  # each batch of scores was committed as it was written
            _reply(conn, Flushed(message.token))
            continue
        assert isinstance(message, Scores)
        ids, embeddings = message.content_ids, message.embeddings
        for start in range(0, len(ids), _CHUNK):
            part = slice(start, start + _CHUNK)
            vectors = None if embeddings is None else embeddings[part]
            records.record_scores(
                message.version_id, ids[part], message.matrix[part], message.floor, vectors
            )


def _reply(conn: Connection, message: Message) -> None:
    with contextlib.suppress(OSError):  # the scan is gone; what was written is committed
        send(conn, message)
