"""Replies on a decoder's pipe, framed so that one read takes every reply waiting.

A scan gets two replies a picture (a look, then a decode), mostly a hundred bytes or
less. Read through `Connection.recv`, each cost two system calls and a few Python
frames in the main process, whose CPU a picture is the budget (issue 13). A decoder
writes each reply as one frame (an 8-byte length, then the pickle), and the parent
reads whatever has arrived in one `os.read`, then cuts out the complete frames.
Requests to the decoder still go through `Connection.send_bytes`: one a picture, and
the decoder's process has time to spare.
"""

from __future__ import annotations

import os
import struct

_HEADER = struct.Struct("!Q")
_READ = 1 << 16  # bytes asked for at once: below glibc's mmap threshold, many replies


def send_frame(fd: int, payload: bytes) -> None:
    """Write one frame to a blocking `fd`, however many writes its size takes."""
    header = _HEADER.pack(len(payload))
    written = os.writev(fd, [header, payload])
    total = len(header) + len(payload)
    if written < total:  # a big reply (a Ray worker's fitted pictures) fills the pipe
        rest = memoryview(header + payload)[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


class Inbox:
    """The bytes read from one decoder's pipe that do not make a whole frame yet."""

    def __init__(self) -> None:
        self._partial = b""

    def read(self, fd: int) -> list[bytes]:
        """The frames completed by one read of `fd`, which must be readable (it does not
        block then); EOFError once the decoder has closed its end (died)."""
        wanted = _READ
        if len(self._partial) >= _HEADER.size:  # the rest of a big frame, in one read
            (size,) = _HEADER.unpack_from(self._partial)
            wanted = max(wanted, _HEADER.size + size - len(self._partial))
        data = os.read(fd, wanted)
        if not data:
            raise EOFError("the decoder closed its pipe")
        if self._partial:
            data = self._partial + data
        frames: list[bytes] = []
        at, end = 0, len(data)
        while end - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(data, at)
            start = at + _HEADER.size
            if end - start < size:
                break
            frames.append(data[start : start + size])
            at = start + size
        self._partial = data[at:]
        return frames
