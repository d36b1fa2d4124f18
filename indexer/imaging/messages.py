"""What crosses a process boundary, as typed messages, and the one codec they cross with.

Three boundaries carry them: the scan's process and its decoder processes
(`imaging.workers`, `imaging.decoder`), the scan and its score writer (`gallery.writer`),
and the Ray driver and its workers (`pipeline.fanout`, `pipeline.remote`, as columns of
encoded messages). Each message is a frozen dataclass, told apart by its type, never by
a tag in a tuple. A failure crosses one way: as `errors.Failure` (reason, kind, pixels
needed), whichever process it happened in; a process that dies without a word is
described by its parent (`spawning.Worker.ended`).

The codec is pickle's protocol 5: the messages hold plain values, and a decoder's
replies are a hundred bytes, which pickle makes and reads fastest. Large arrays (a
batch's score matrix to the writer) may travel out of band, straight from the array
(`encode`'s `buffers`): pickled into the message, they were copied twice more.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.errors import Failure
from indexer.imaging.slots import SlotAddress
from indexer.preparation import ModelSpec


@dataclass(frozen=True)
class Target:
    """One model's input geometry: the picture is fitted once per target."""

    spec: ModelSpec
    height: int
    width: int


# A target as it travels: pickled once (a model's settings are a dozen fields), not per
# picture; a decoder unpickles each one once (`Targets`).
PackedTarget = bytes


@functools.lru_cache(maxsize=64)
def packed(target: Target) -> PackedTarget:
    return pickle.dumps(target, pickle.HIGHEST_PROTOCOL)


class Targets(dict[PackedTarget, Target]):
    """A decoder's targets by their packed bytes, each unpickled once."""

    def __missing__(self, key: PackedTarget) -> Target:
        target: Target = pickle.loads(key)
        self[key] = target
        return target


# -- to a decoder ----------------------------------------------------------------------
@dataclass(frozen=True)
class Look:
    """Read and hash the file at `path`: answered by `Looked`, `Skipped` or `Failure`."""

    path: bytes


@dataclass(frozen=True)
class LookMany:
    """Several looks sent together (`workers.LOOK_GROUP`): answered by one `LookedMany`."""

    paths: tuple[bytes, ...]


@dataclass(frozen=True)
class DecodeInto:
    """Decode the file (still xxh3-128 `expect`, when given) into each target's slot:
    answered by `Decoded`, `Skipped` or `Failure`."""

    path: bytes
    expect: str | None
    targets: tuple[tuple[PackedTarget, SlotAddress], ...]

    @classmethod
    def of(
        cls, path: bytes, expect: str | None, targets: Sequence[tuple[Target, SlotAddress]]
    ) -> DecodeInto:
        return cls(path, expect, tuple((packed(t), address) for t, address in targets))


@dataclass(frozen=True)
class Fit:
    """A Ray worker's: the pictures fitted for each target (`Fitted`), from the file or
    from its bytes as the driver shipped them (`data`)."""

    path: bytes
    expect: str | None
    targets: tuple[PackedTarget, ...]
    data: bytes | None = None

    @classmethod
    def of(
        cls, path: bytes, expect: str | None, targets: Sequence[Target], data: bytes | None = None
    ) -> Fit:
        return cls(path, expect, tuple(packed(t) for t in targets), data)


# -- from a decoder --------------------------------------------------------------------
@dataclass(frozen=True)
class Looked:
    """A file as read: its hashes, its stat while it held still, its displayed size."""

    xxh128: str
    sha1: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    ctime_ns: int
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Skipped:
    """The file went away or changed under us: nothing is recorded, the next scan looks."""

    reason: str
    vanished: bool = False


@dataclass(frozen=True)
class Decoded:
    """Every slot is written; the picture's full size as decoded."""

    width: int
    height: int


@dataclass(frozen=True)
class Fitted:
    """Each target's fitted picture (uint8), in the order of the request's targets."""

    pictures: tuple[NDArray[np.uint8], ...]


@dataclass(frozen=True)
class LookedMany:
    """Each path's own answer, in the order of `LookMany.paths`."""

    replies: tuple[Looked | Skipped | Failure, ...]


Request = Look | LookMany | DecodeInto | Fit
Reply = Looked | Skipped | Decoded | Fitted | LookedMany | Failure


# -- to and from the score writer ------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    """One batch's results for a model version, to be stored by the writer."""

    version_id: int
    content_ids: tuple[int, ...]
    matrix: NDArray[np.float32]
    floor: float
    embeddings: NDArray[np.float32] | None


@dataclass(frozen=True)
class Flush:
    """Commit everything sent so far, then answer `Flushed` with the same token."""

    token: int


@dataclass(frozen=True)
class Flushed:
    token: int


@dataclass(frozen=True)
class Close:
    """Commit and exit."""


@dataclass(frozen=True)
class Ready:
    """A worker has started and takes requests: the writer has its connection (it takes
    `Scores`), a decoder has imported its codecs. A decoder's time limit for a picture
    runs from here, not from the request's sending (a loaded machine can take seconds to
    start a process)."""


Message = Request | Reply | Scores | Flush | Flushed | Close | Ready


# -- the codec -------------------------------------------------------------------------
# Every message type, by the number it travels as: a message crosses as a plain tuple (its
# number, then its fields in order). Pickled as itself, a dataclass cost the scan's
# process 5 us more for each of the four messages a picture takes (pickle looks its class
# up by name and builds it through its state dict); a tuple costs what the tuples tagged
# by a string that came before cost.
_TYPES: tuple[type[Message], ...] = (
    Look, LookMany, DecodeInto, Fit,
    Looked, Skipped, Decoded, Fitted, LookedMany, Failure,
    Scores, Flush, Flushed, Close, Ready,
)  # fmt: skip
_NUMBERS = {kind: number for number, kind in enumerate(_TYPES)}


def encode(message: Message, buffers: list[pickle.PickleBuffer] | None = None) -> bytes:
    """The message as bytes. Given `buffers`, its arrays are left out of the bytes and
    appended there, uncopied, to be handed to `decode` with them."""
    fields = (_NUMBERS[type(message)], *vars(message).values())
    callback = None if buffers is None else buffers.append
    return pickle.dumps(fields, pickle.HIGHEST_PROTOCOL, buffer_callback=callback)


def decode(data: bytes | memoryview, buffers: Sequence[Any] = ()) -> Message:
    """The message `encode` made (its arrays read-only views of `buffers`)."""
    number, *fields = pickle.loads(data, buffers=buffers)
    message: Message = _TYPES[number](*fields)
    return message


def send(conn: Connection, message: Message) -> None:
    """Send on a pipe: the count of out-of-band buffers and the message, then each buffer
    (an array's bytes, written from the array), as `receive` takes them."""
    buffers: list[pickle.PickleBuffer] = []
    head = encode(message, buffers)
    conn.send_bytes(bytes([len(buffers)]) + head)
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


def receive(conn: Connection) -> Message:
    """A message `send` sent; EOFError or OSError when the other end is gone."""
    head = conn.recv_bytes()
    buffers = [conn.recv_bytes() for _ in range(head[0])]
    return decode(memoryview(head)[1:], buffers)
