"""What runs in a decoder process: the requests it takes and its loop.

A decoder reads, hashes and decodes pictures for the main process (`workers.DecoderPool`
starts and feeds it), each request answered by one reply framed on the pipe (`frames`).
It ignores the stop signals: its parent decides how to stop, and kills it.
"""

from __future__ import annotations

import ctypes
import functools
import pickle
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image

from indexer.errors import DecodeError, Failure, Kind
from indexer.imaging.frames import send_frame
from indexer.imaging.slots import SlotAddress, SlotWriter
from indexer.imaging.spawning import STOP_SIGNALS
from indexer.imaging.tasks import Looked, Skipped, Target, decode_into, look, read_again, unchanged
from indexer.imaging.tasks import prepare_targets as fitted

# A request: ("look", path) or ("decode", path, expected xxh3-128 or None, targets), or
# ("fit", path, expected, targets) for a Ray worker, answered with the fitted uint8 pictures
# (("fit", path, expected, targets, bytes) when the driver shipped the file's bytes).
# The pool sends queued looks as one ("looks", [path, ...]), answered by one reply that
# holds each path's own (see `workers.DecoderPool`).
Request = tuple[Any, ...]
Reply = Looked | Skipped | tuple[int, int] | Failure | list[Any]


def look_request(path: bytes) -> Request:
    return ("look", path)


def looks_request(paths: list[bytes]) -> Request:
    return ("looks", paths)


@functools.lru_cache(maxsize=64)
def packed_target(target: Target) -> bytes:
    return pickle.dumps(target)


def decode_request(
    path: bytes, expect: str | None, targets: Sequence[tuple[Target, SlotAddress]]
) -> Request:
    """Targets travel pickled once (a model's settings are a dozen fields) as bytes."""
    return ("decode", path, expect, [(packed_target(t), address) for t, address in targets])


def fit_request(
    path: bytes, expect: str | None, targets: Sequence[Target], data: bytes | None = None
) -> Request:
    """A Ray worker's: the fitted pictures, from the file or from the bytes it was sent."""
    packed = [packed_target(t) for t in targets]
    return ("fit", path, expect, packed) if data is None else ("fit", path, expect, packed, data)


class _Unpacked(dict[bytes, Target]):
    def __missing__(self, packed: bytes) -> Target:
        target: Target = pickle.loads(packed)
        self[packed] = target
        return target


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


def _answer(
    request: Request, writer: SlotWriter, targets: _Unpacked, max_pixels: int
) -> tuple[str, Any]:
    """("ok", the result) or ("error", (reason, kind, pixels needed)): one picture's."""
    if request[0] == "looks":
        looks = [_answer(look_request(path), writer, targets, max_pixels) for path in request[1]]
        return ("ok", looks)
    try:
        return ("ok", _handle(request, writer, targets, max_pixels))
    except DecodeError as exc:
        return ("error", (str(exc), exc.kind.value, exc.needs))
    except MemoryError:
        return ("error", ("out of memory while decoding", Kind.MEMORY.value, None))
    except Exception as exc:  # a codec's own error type, a ring already gone: this
        # picture fails (retried by the next scan); the decoder lives on
        return ("error", (f"decoder failed: {exc!r}", Kind.CRASH.value, None))


def _handle(request: Request, writer: SlotWriter, targets: _Unpacked, max_pixels: int) -> Any:
    if request[0] == "look":
        return look(request[1])
    _, path, expect, packed, *sent = request
    data = unchanged(sent[0], expect) if sent else read_again(path, expect)
    if isinstance(data, Skipped):
        return data
    if request[0] == "fit":
        return fitted(data, [targets[t] for t in packed], max_pixels)[0]
    return decode_into(data, [(targets[t], a) for t, a in packed], writer, max_pixels)


def serve(conn: Connection, max_pixels: int) -> None:
    """Answer requests until the parent goes away (the decoder process's whole life)."""
    # A service manager signals the whole process group (Ctrl-C does too): the parent
    # decides how to stop, and kills its decoders itself. They started with these
    # signals blocked (see `_Worker`), so none slipped in before this line.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _keep_freed_memory()
    # `max_pixels` is the one limit, checked on what is really decoded (JPEGs decode
    # DCT-scaled); Pillow's own guard would refuse pictures it allows (89 MP < 100 MP).
    Image.MAX_IMAGE_PIXELS = None
    writer, targets = SlotWriter(), _Unpacked()
    fd = conn.fileno()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent went away
        reply = _answer(request, writer, targets, max_pixels)
        try:
            send_frame(fd, pickle.dumps(reply, pickle.HIGHEST_PROTOCOL))
        except OSError:
            return  # the parent stopped listening (it is stopping us): not worth a traceback
