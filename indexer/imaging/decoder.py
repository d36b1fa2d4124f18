"""What runs in a decoder process: the requests it takes and its loop.

A decoder reads, hashes and decodes pictures for the main process (`workers.DecoderPool`
starts and feeds it): each request (`messages.Request`) is answered by one reply
(`messages.Reply`), encoded by the one codec and framed on the pipe (`frames`). It
ignores the stop signals: its parent decides how to stop, and kills it.
"""

from __future__ import annotations

import ctypes
from multiprocessing.connection import Connection

from PIL import Image

from indexer.errors import DecodeError, Failure, Kind
from indexer.imaging.frames import send_frame
from indexer.imaging.messages import (
    Decoded,
    DecodeInto,
    Fit,
    Fitted,
    Look,
    Looked,
    LookedMany,
    LookMany,
    Ready,
    Reply,
    Request,
    Skipped,
    Targets,
    decode,
    encode,
)
from indexer.imaging.slots import SlotWriter
from indexer.imaging.spawning import ignore_stop_signals
from indexer.imaging.tasks import decode_into, look, read_again, unchanged
from indexer.imaging.tasks import prepare_targets as fitted


def _keep_freed_memory(limit: int = 256 << 20) -> None:
    """Let glibc reuse a big picture's freed memory for the next one, up to `limit`.

    By default every buffer over 32 MB is a fresh mmap, and faulting its pages in again
    costs more than a tenth of decoding a 16-megapixel PNG (benchmarks: 64 ms mean
    prepare time becomes 56 ms). Past `limit`, freed memory still goes back to the
    system, so one huge picture does not pin a worker's size. Elsewhere a no-op.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_max = -1, -4
    mallopt(m_mmap_max, 0)
    mallopt(m_trim_threshold, limit)


def _answer(request: Request, writer: SlotWriter, targets: Targets, max_pixels: int) -> Reply:
    """The request's reply: its result, or why this picture failed (the decoder lives on)."""
    if isinstance(request, LookMany):
        return LookedMany(tuple(_looked(path) for path in request.paths))
    try:
        return _handle(request, writer, targets, max_pixels)
    except Exception as exc:
        return _failed(exc)


def _looked(path: bytes) -> Looked | Skipped | Failure:
    try:
        return look(path)
    except Exception as exc:
        return _failed(exc)


def _failed(exc: Exception) -> Failure:
    if isinstance(exc, DecodeError):
        return Failure(str(exc), exc.kind, exc.needs)
    if isinstance(exc, MemoryError):
        return Failure("out of memory while decoding", Kind.MEMORY)
    # A codec's own error type, a ring already gone: this picture fails (retried by the
    # next scan); the decoder lives on.
    return Failure(f"decoder failed: {exc!r}", Kind.CRASH)


def _handle(request: Request, writer: SlotWriter, targets: Targets, max_pixels: int) -> Reply:
    # `read_again` and `unchanged` are looked up here, in this module, at every call:
    # tests wrap them to inject faults (tests/hooks/sitecustomize.py).
    if isinstance(request, Look):
        return look(request.path)
    assert isinstance(request, DecodeInto | Fit)
    sent = request.data if isinstance(request, Fit) else None
    data = (
        read_again(request.path, request.expect)
        if sent is None
        else unchanged(sent, request.expect)
    )
    if isinstance(data, Skipped):
        return data
    if isinstance(request, Fit):
        pictures = fitted(data, [targets[t] for t in request.targets], max_pixels)[0]
        return Fitted(tuple(pictures))
    places = [(targets[t], address) for t, address in request.targets]
    return Decoded(*decode_into(data, places, writer, max_pixels))


def serve(conn: Connection, max_pixels: int) -> None:
    """Answer requests until the parent goes away (the decoder process's whole life)."""
    ignore_stop_signals()  # they started blocked (see imaging.spawning)
    _keep_freed_memory()
    # `max_pixels` is the one limit, checked on what is really decoded (JPEGs decode
    # DCT-scaled); Pillow's own guard would refuse pictures it allows (89 MP < 100 MP).
    Image.MAX_IMAGE_PIXELS = None
    writer, targets = SlotWriter(), Targets()
    fd = conn.fileno()
    try:
        send_frame(fd, encode(Ready()))
    except OSError:
        return  # the parent went away while this worker started
    while True:
        try:
            request = decode(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent went away
        assert isinstance(request, Look | LookMany | DecodeInto | Fit)
        reply = _answer(request, writer, targets, max_pixels)
        try:
            send_frame(fd, encode(reply))
        except OSError:
            return  # the parent stopped listening (it is stopping us): not worth a traceback
