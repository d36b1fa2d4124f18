"""The GPU lane without a GPU, for tests: a batch decoder of the tests' own (Pillow, in
host memory, used as nvImageCodec's is), and the switch that sends a whole `dtindex` run
through the lane on ONNX Runtime's CPU device.

Where DTINDEX_TEST_GPU_LANE names a decoder behaviour ("takes", "refuses", "fails"), a
model's session counts as one the GPU decodes for and the lane's decoder is this one on
'cpu'; unset, the production rule decides (no GPU here: the CPU decodes). sitecustomize
installs the switch into the processes a test starts; a test installs it into its own
process with `install_runtime` and `install_device`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

SWITCH = "DTINDEX_TEST_GPU_LANE"


class PillowDecoder:
    """A batch decoder as nvImageCodec's is used, in host memory: every pixel, EXIF
    orientation applied, RGB; None for a picture it cannot decode (or `refuses`), and
    the whole batch raising where `fails_batch` says so. `invert`: hand back the
    negative, so a test can tell which path prepared a picture."""

    def __init__(
        self,
        refuses: Callable[[int], bool] = lambda n: False,
        fails_batch: Callable[[int], bool] = lambda n: False,
        invert: bool = False,
    ) -> None:
        self.refuses, self.fails_batch, self.invert = refuses, fails_batch, invert
        self.batches: list[int] = []
        self.decoded = 0
        self.seen = 0

    def decode(self, datas: list[bytes]) -> list[np.ndarray | None]:
        self.batches.append(len(datas))
        if self.fails_batch(len(self.batches)):
            raise RuntimeError("out of device memory")
        pictures: list[np.ndarray | None] = []
        for data in datas:
            self.seen += 1
            pictures.append(None if self.refuses(self.seen) else self._one(data))
        self.decoded += sum(p is not None for p in pictures)
        return pictures

    def _one(self, data: bytes) -> np.ndarray | None:
        from indexer.imaging.prepare import decode

        try:
            image, _ = decode(data, 10**8)
        except Exception:
            return None
        pixels = np.asarray(image.convert("RGB"))
        return np.ascontiguousarray(255 - pixels) if self.invert else pixels

    def buffer(self, image: np.ndarray) -> Any:
        from indexer.imaging.gpu.prepare import Buffer

        return Buffer.of_array(image)


BEHAVIOURS: dict[str, dict[str, Callable[[int], bool]]] = {
    "takes": {},
    "refuses": {"refuses": lambda n: n % 3 == 0},
    "fails": {"fails_batch": lambda n: n == 1},
}


def switched() -> str | None:
    """The decoder behaviour asked for, or None: the production rule decides."""
    return os.environ.get(SWITCH) or None


def install_runtime(runtime: ModuleType) -> Callable[[], None]:
    """Where the switch is on, a session counts as one the GPU decodes for (unless
    `decode = cpu`); returns what undoes it."""
    chosen = runtime.gpu_decodes

    def gpu_decodes(asked: str, cpu: bool, providers: Any, *rest: Any) -> bool:
        if switched():
            return asked != "cpu"
        return bool(chosen(asked, cpu, providers, *rest))

    runtime.gpu_decodes = gpu_decodes
    return lambda: setattr(runtime, "gpu_decodes", chosen)


def install_device(device: ModuleType) -> Callable[[], None]:
    """The lane's decoder is this one, on 'cpu'. The production `device_for` reaches its
    decoder only where the session counts as one the GPU decodes for, which without the
    switch it never does here; returns what undoes it."""
    function = device.device_for
    before = function.__defaults__

    def decoder(device_id: int) -> PillowDecoder:
        return PillowDecoder(**BEHAVIOURS[switched() or "takes"])

    function.__defaults__ = (decoder, "cpu")
    return lambda: setattr(function, "__defaults__", before)
