"""One model's batches in its shared-memory ring: filled in job order, run in order.

A picture gets its slot when the main process decides it is wanted, so a batch is a
run of consecutive slots and never needs gathering. A region of the ring is taken from
the batch's first slot until ONNX Runtime has finished with it (`released`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from indexer.imaging.messages import Target
from indexer.imaging.slots import SlotAddress, SlotRing
from indexer.models.runtime import Tagger

J = TypeVar("J")


@dataclass(eq=False)
class Batch(Generic[J]):
    number: int  # its region is number % depth
    slots: list[J | None] = field(default_factory=list)  # None: the decode failed
    pending: int = 0  # decodes not answered yet
    on_device: set[int] = field(default_factory=set)  # positions the GPU lane prepared


class Lane(Generic[J]):
    def __init__(self, index: int, tagger: Tagger, ring: SlotRing) -> None:
        self.index, self.tagger, self.ring, self.size = index, tagger, ring, ring.batch
        self.target = Target(tagger.spec, tagger.height, tagger.width)
        self.waiting: deque[Batch[J]] = deque()  # placed, not run yet; the last may fill
        self._taken = 0  # regions held: waiting batches and batches running
        self._numbers = 0

    def has_room(self) -> bool:
        filling = self.waiting and len(self.waiting[-1].slots) < self.size
        return bool(filling) or self._taken < self.ring.depth

    def place(self, job: J) -> tuple[Batch[J], int, SlotAddress]:
        """The next slot for `job` (call `has_room` first)."""
        if not self.waiting or len(self.waiting[-1].slots) >= self.size:
            self.waiting.append(Batch(self._numbers))
            self._numbers += 1
            self._taken += 1
        batch = self.waiting[-1]
        position = len(batch.slots)
        batch.slots.append(job)
        batch.pending += 1
        return batch, position, self.ring.address(self.ring.first(batch.number) + position)

    def ready(self, flush: bool) -> Batch[J] | None:
        """The oldest batch, once every decode for it is answered and it is full (or
        `flush`: no more pictures are coming)."""
        if not self.waiting:
            return None
        head = self.waiting[0]
        if head.pending or not (len(head.slots) == self.size or flush or len(self.waiting) > 1):
            return None
        return self.waiting.popleft()

    def view(self, batch: Batch[J]) -> NDArray[np.float32]:
        return self.ring.view(batch.number, len(batch.slots))

    def released(self) -> None:
        self._taken -= 1

    def drop_waiting(self) -> None:
        """Forget batches not run (a stop): their regions are free again."""
        self._taken -= len(self.waiting)
        self.waiting.clear()
