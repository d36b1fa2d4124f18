"""Running a chunk of a batch through a session: from host memory, or from rows already
where ONNX Runtime runs the model (`DeviceRows`: a batch the GPU decoded and prepared
in place, `pipeline.device`), bound by I/O binding so nothing goes back to the host.

Rows on a device are bound as they lie, with no copy: a slice of them is an address and
a row count. A graph with a fixed batch is padded to it with the rows that follow in the
same memory (their results are dropped), where on the host it is padded with zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.imaging.gpu.prepare import Buffer


@dataclass(frozen=True)
class DeviceRows:
    """Consecutive batch rows where ONNX Runtime can bind them (`buffer`: the first row's
    address, shape (rows, *picture)); `spare`: rows after them the memory still holds."""

    buffer: Buffer
    spare: int = 0

    def __len__(self) -> int:
        return self.buffer.shape[0]

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.buffer.shape[1:])) * 4  # float32

    def __getitem__(self, part: slice) -> DeviceRows:
        start, stop, step = part.indices(len(self))
        if step != 1:
            raise ValueError("device rows are sliced contiguously")
        stop = max(start, stop)
        b = self.buffer
        moved = Buffer(b.device, b.device_id, b.address + start * self.row_bytes,
                       (stop - start, *b.shape[1:]))  # fmt: skip
        return DeviceRows(moved, self.spare + len(self) - stop)

    def padded(self, rows: int) -> DeviceRows:
        """These rows and the ones after them, `rows` in all (a fixed batch's size)."""
        extra = rows - len(self)
        if extra <= 0:
            return self
        if extra > self.spare:
            raise ValueError(f"{extra} rows of padding asked for, {self.spare} held")
        b = self.buffer
        return DeviceRows(Buffer(b.device, b.device_id, b.address, (rows, *b.shape[1:])),
                          self.spare - extra)  # fmt: skip


# What a model runs on: a host array, or rows on its device.
Input = NDArray[np.float32] | DeviceRows


def run_chunk(
    session: Any, input_name: str, chunk: Input, step: int, names: Sequence[str], bound: bool
) -> Any:
    """The outputs `names` for `chunk`, padded to `step` rows (see the module); `bound`:
    a host chunk goes to a GPU provider by I/O binding, copied there once."""
    if isinstance(chunk, DeviceRows):
        rows = chunk.padded(step).buffer
        binding = session.io_binding()
        binding.bind_input(input_name, rows.device, rows.device_id, np.float32,
                           list(rows.shape), rows.address)  # fmt: skip
        return _outputs(session, binding, names)
    if len(chunk) < step:
        chunk = np.concatenate(
            [chunk, np.zeros((step - len(chunk), *chunk.shape[1:]), chunk.dtype)]
        )
    if not bound:
        return session.run(list(names), {input_name: chunk})
    binding = session.io_binding()
    binding.bind_cpu_input(input_name, np.ascontiguousarray(chunk))
    return _outputs(session, binding, names)


def _outputs(session: Any, binding: Any, names: Sequence[str]) -> Any:
    """Run a binding; the outputs come back to the host once (they are small)."""
    for name in names:
        binding.bind_output(name)
    session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()
