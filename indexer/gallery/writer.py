"""The process that stores a scan's scores, so the scan's own process never writes a row
of them.

A WD-size model keeps about 150 scores per picture. Written by the scan's process, their
rows cost it about 0.9 ms of CPU per picture (SQLite's B-tree and index inserts, not
Python), which caps a scan near a thousand pictures per second whatever the GPU does.
Here each batch's score matrix goes through a pipe to a writer process, which selects
the scores worth keeping and writes them with the batch's taggings and claim releases in
one transaction of its own connection, as `Records.record_scores` always did. The
matrix (2.3 MB for a WD batch of 64) crosses as pickle's out-of-band buffers, written
to the pipe straight from the array (`_write`, `_read`): pickled into one message, it
was copied twice more on the scan's side, about 0.5 ms of its CPU a batch.

Rules that keep the index true:
- The scan's writes are batches (`store.unit`) committed before anything that can wait
  on the writer (a send into a full pipe, a flush), so the two never wait on each
  other's locks.
- The scan flushes at the end of every run and before it reads what is settled, so a
  run's counts, and an exit status, are given only once its results are committed.
- A failed write (a full disk) is sent back and raised in the scan as the database's own
  error; the writer stops there, and the rest of the run's results stay unclaimed for
  the next scan.
- The writer ignores the stop signals a process group gets (the scan decides how to
  stop) and, when the scan dies, commits what it was sent and exits: every batch it has
  is whole.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import queue
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from indexer.errors import StoreError
from indexer.imaging.spawning import STOP_SIGNALS, Worker, start_worker
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
        self._send(("scores", version_id, list(content_ids), matrix, floor, embeddings))

    def flush(self) -> None:
        """Wait until everything handed over is committed; raise what went wrong."""
        self._records.settle()
        if not self._ready:
            return
        self._flushes += 1
        token = self._flushes
        self._send(("flush", token))
        while self._receive() != ("flushed", token):
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
                self._send(("close",))
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
    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._conn is not None
        try:
            _write(self._conn, message)
        except OSError:  # the writer is gone: what it said, else that it died
            self._drain()
            raise self._died() from None

    def _receive(self) -> tuple[Any, ...]:
        assert self._conn is not None
        if not self._conn.poll(_PATIENCE_S):
            raise WriterFailed(f"the index writer has not answered in {_PATIENCE_S:g} s")
        try:
            reply: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if reply[0] == "error":
            raise _as_database_error(reply[1])
        if reply[0] == "ready":
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
        self._process.join(5)
        code = self._process.exitcode
        how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
        return WriterFailed(
            f"the index writer died ({how}); results not yet stored are tagged again by "
            "the next scan"
        )


def _write(conn: Connection, message: tuple[Any, ...]) -> None:
    """One message to the writer: the count of its out-of-band buffers and its pickle,
    then each buffer (an array's bytes, not copied), as `_read` takes them."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(message, pickle.HIGHEST_PROTOCOL, buffer_callback=buffers.append)
    conn.send_bytes(bytes([len(buffers)]) + head)
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


def _read(conn: Connection) -> tuple[Any, ...]:
    """A message `_write` sent; its arrays are read-only views of the bytes received."""
    head = conn.recv_bytes()
    buffers = [conn.recv_bytes() for _ in range(head[0])]
    message: tuple[Any, ...] = pickle.loads(memoryview(head)[1:], buffers=buffers)
    return message


def _as_database_error(text: str) -> OperationalError:
    """The writer's database error as the scan's own would read (a full disk included)."""
    return OperationalError("(results of a batch)", None, Exception(text))


# -- the writer process ----------------------------------------------------------------
def _serve(conn: Connection, where: Location) -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    inbox: queue.Queue[tuple[Any, ...] | None] = queue.Queue(_AHEAD)
    threading.Thread(target=_receive_into, args=(conn, inbox), daemon=True).start()
    engine = reopen(where)
    with engine.connect() as db:
        records = Records(db)
        _reply(conn, ("ready",))
        try:
            _write_all(inbox, records, conn)
        except SQLAlchemyError as exc:  # its batch was rolled back
            detail = getattr(exc, "orig", None) or exc
            _reply(conn, ("error", str(detail)))
    engine.dispose()


def _receive_into(conn: Connection, inbox: queue.Queue[tuple[Any, ...] | None]) -> None:
    """Read the pipe as fast as it fills, so a send waits only when the inbox is full;
    None when the scan is gone (its end of the pipe closed)."""
    while True:
        try:
            message = _read(conn)
        except (EOFError, OSError):
            inbox.put(None)
            return
        inbox.put(message)
        if message[0] == "close":
            return


def _write_all(
    inbox: queue.Queue[tuple[Any, ...] | None], records: Records, conn: Connection
) -> None:
    while True:
        message = inbox.get()
        if message is None or message[0] == "close":
            return
        if message[0] == "flush":  # each batch of scores was committed as it was written
            _reply(conn, ("flushed", message[1]))
            continue
        _, version_id, content_ids, matrix, floor, embeddings = message
        for start in range(0, len(content_ids), _CHUNK):
            part = slice(start, start + _CHUNK)
            vectors = None if embeddings is None else embeddings[part]
            records.record_scores(version_id, content_ids[part], matrix[part], floor, vectors)


def _reply(conn: Connection, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):  # the scan is gone; what was written is committed
        conn.send(message)
