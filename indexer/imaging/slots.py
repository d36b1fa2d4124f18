"""Batches in shared memory: decoders write each picture's final tensor into its slot.

One ring per model holds `depth` batches of `batch` slots, each slot one picture in the
model's layout, channel order and scale (float32). A decoder process writes a slot in
place, so the main process never touches a pixel: a full batch is a contiguous view of
the ring, handed to ONNX Runtime as it is. Batch `k` always lies in region `k % depth`,
so a region is reused only after its batch has run.

The memory is reserved up front (`posix_fallocate`): on a tmpfs that is too small (a
container's 64 MB `/dev/shm`) the ring fails to be made with a clear message, where
writing into pages the tmpfs cannot give would kill a decoder with SIGBUS.
"""

from __future__ import annotations

import contextlib
import os
from multiprocessing import shared_memory

import numpy as np
from numpy.typing import NDArray

from indexer.errors import DtindexError
from indexer.wording import plural


class SharedMemoryError(DtindexError):
    """The shared memory for the batch rings cannot be had."""


# Where a decoder writes one picture: the ring's name, the slot's byte offset, its shape.
# A plain tuple: it is pickled for every picture, and a dataclass pickles ten times slower.
SlotAddress = tuple[str, int, tuple[int, ...]]


class SlotRing:
    """One model's batches in shared memory (owned by the main process)."""

    def __init__(self, shape: tuple[int, ...], batch: int, depth: int) -> None:
        self.shape, self.batch, self.depth = shape, batch, depth
        self.slot_bytes = int(np.prod(shape)) * 4
        size = self.slot_bytes * batch * depth
        try:
            self._memory = shared_memory.SharedMemory(create=True, size=size)
        except OSError as exc:
            raise SharedMemoryError(
                f"cannot make {size >> 20} MB of shared memory: {exc}"
            ) from None
        try:
            _reserve(self._memory, size)
        except OSError as exc:
            self.close()
            raise SharedMemoryError(
                f"shared memory is too small: the batch ring needs {size >> 20} MB "
                f"({plural(batch, 'picture')} x {plural(depth, 'batch', 'batches')}) "
                f"and the system refused ({exc.strerror}); "
                "lower --batch, or give the container more (docker run --shm-size=2g)"
            ) from None
        self.array: NDArray[np.float32] = np.ndarray(
            (depth * batch, *shape), np.float32, buffer=self._memory.buf
        )

    def address(self, slot: int) -> SlotAddress:
        return (self._memory.name, slot * self.slot_bytes, self.shape)

    def first(self, region: int) -> int:
        """The slot a region begins at (batch `k` lies in region `k`, taken modulo depth)."""
        return (region % self.depth) * self.batch

    def view(self, region: int, count: int) -> NDArray[np.float32]:
        """The first `count` slots of a region: contiguous, ready for ONNX Runtime."""
        first = self.first(region)
        return self.array[first : first + count]

    def close(self) -> None:
        self.__dict__.pop("array", None)  # the buffer must be released before closing
        with contextlib.suppress(OSError, BufferError):
            self._memory.close()
        with contextlib.suppress(OSError):
            self._memory.unlink()


def _reserve(memory: shared_memory.SharedMemory, size: int) -> None:
    fd = getattr(memory, "_fd", -1)
    if fd >= 0 and hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)


class SlotWriter:
    """A decoder's view of the rings: attached once per ring, written slot by slot."""

    KEPT = 8  # rings attached at once: one per model, and a few of earlier runs

    def __init__(self) -> None:
        self._attached: dict[str, shared_memory.SharedMemory] = {}

    def slot(self, address: SlotAddress) -> NDArray[np.float32]:
        ring, offset, shape = address
        memory = self._attached.pop(ring, None)
        if memory is None:
            memory = shared_memory.SharedMemory(name=ring)
        self._attached[ring] = memory  # the most recently used last
        while len(self._attached) > self.KEPT:  # unpin a ring its owner may have dropped
            oldest = next(iter(self._attached))
            with contextlib.suppress(BufferError, OSError):
                self._attached.pop(oldest).close()
        return np.ndarray(shape, np.float32, buffer=memory.buf, offset=offset)
