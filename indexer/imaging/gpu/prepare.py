"""Running the preparation graph (`graph`) on pictures wherever they are, by I/O binding.

A `Buffer` names memory ONNX Runtime can bind: on the GPU, nvImageCodec's decoded picture
and a slot of the model's batch, so nothing comes back to the host; on the CPU ('cpu'),
numpy arrays, which is how the tests run this same code on the CPU provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from indexer.imaging.gpu.graph import INPUT, OUTPUT, PADS, SIZES, Mode, build, build_copy, geometry
from indexer.imaging.messages import Target


@dataclass(frozen=True)
class Buffer:
    """Memory ONNX Runtime can bind: its device ('cuda', 'cpu'), device number, address
    and shape (C order, no row padding)."""

    device: str
    device_id: int
    address: int
    shape: tuple[int, ...]

    @classmethod
    def of_array(cls, array: NDArray[Any]) -> Buffer:
        """A host array's buffer (it must stay alive while the buffer is used)."""
        if not array.flags.c_contiguous:
            raise ValueError("a bound array must be C-contiguous")
        return cls("cpu", 0, int(array.ctypes.data), tuple(array.shape))


class Preparer:
    """One model's preparation graphs (one per filter), and the copy of host rows into
    its batch, each made when first needed."""

    def __init__(self, target: Target, providers: Sequence[Any]) -> None:
        self.target, self.providers = target, list(providers)
        self._sessions: dict[Mode | Literal["copy"], Any] = {}

    def _session(self, mode: Mode | Literal["copy"]) -> Any:
        if mode not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            # ONNX Runtime's transpose optimizer moves the layout Transpose through
            # Resize and loses the `sizes` input's length (1.32: "Number of elements of
            # input 'sizes' (0) does not match the number of axes"); a dozen nodes gain
            # nothing from optimizing anyway.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            graph = build_copy() if mode == "copy" else build(self.target.spec, mode)
            self._sessions[mode] = ort.InferenceSession(graph, options, providers=self.providers)
        return self._sessions[mode]

    def upload(self, rows: Buffer, batch: Buffer) -> None:
        """Copy prepared rows (the CPU decoders', in host memory) into `batch`'s rows."""
        binding = self._session("copy").io_binding()
        binding.bind_input(INPUT, rows.device, rows.device_id, np.float32,
                           list(rows.shape), rows.address)  # fmt: skip
        binding.bind_output(OUTPUT, batch.device, batch.device_id, np.float32,
                            list(batch.shape), batch.address)  # fmt: skip
        self._session("copy").run_with_iobinding(binding)

    def fill(self, picture: Buffer, slot: Buffer) -> bool:
        """Prepare a decoded picture (height x width x 3, uint8 RGB) into `slot`; False
        (nothing written) when the graph does not take it (see `graph.mode_for`)."""
        height, width = picture.shape[0], picture.shape[1]
        sizes, pads, mode = geometry(self.target.spec, self.target.height, self.target.width,
                                     (height, width))  # fmt: skip
        if mode is None:
            return False
        session = self._session(mode)
        binding = session.io_binding()
        binding.bind_input(INPUT, picture.device, picture.device_id, np.uint8,
                           list(picture.shape), picture.address)  # fmt: skip
        binding.bind_cpu_input(SIZES, sizes)
        binding.bind_cpu_input(PADS, pads)
        binding.bind_output(OUTPUT, slot.device, slot.device_id, np.float32,
                            list(slot.shape), slot.address)  # fmt: skip
        session.run_with_iobinding(binding)
        return True
