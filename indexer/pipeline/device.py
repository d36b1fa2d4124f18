"""The GPU lane: a model's JPEGs decoded in batches on its device and prepared there,
into its batch, which the model then runs from without it coming back to the host.

Orders are placed in the lane's batches as on the CPU path (`lanes`), so a picture has
the same row either way; the lane holds those of the batch being filled and, once it is
full (or no more orders come), reads their files here, checks each is still the content
decided on, and hands them to the decoder (`imaging.gpu.decode.split`). What it decodes
is prepared straight into the picture's row of the device batch (`Preparer.fill`); what
it refuses (not a JPEG, CMYK, over the pixel limit, unreadable or changed, a decode or
preparation that fails) is sent to the CPU decoder processes exactly as without the lane,
into the host ring's slot for that row, and copied into the device batch when the batch
is run (`rows`). Replies, holes, failures and results are the CPU path's: the steps, the
writer and the exports do not know which way a picture was decoded.

The decoder and the device are the seam (`Device`): production has nvImageCodec on
'cuda' (`device_for`), the tests a decoder of their own on 'cpu', through the same code.
The run's single model (`choice.for_run`) is why one lane is enough: a run of several
models decodes on the CPU once for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from indexer.errors import DtindexError, ModelError
from indexer.imaging.gpu.choice import for_run
from indexer.imaging.gpu.decode import BatchDecoder, NvDecoder, split
from indexer.imaging.gpu.prepare import Buffer, Preparer
from indexer.imaging.messages import Target
from indexer.imaging.slots import SlotAddress
from indexer.imaging.tasks import read_again
from indexer.models.bound import DeviceRows
from indexer.models.runtime import Tagger
from indexer.pipeline.lanes import Batch, Lane


class _Ordered(Protocol):
    """What the lane reads of an order (`flow.Order`)."""

    @property
    def path(self) -> bytes: ...

    @property
    def expect(self) -> str | None: ...


log = logging.getLogger("dtindex")
J = TypeVar("J")
Ord = TypeVar("Ord", bound=_Ordered)
# The preparation graphs run on the model's own device, never on TensorRT (an engine
# built for a dozen nodes at every picture size would cost more than it saves).
_PREPARING = ("CUDAExecutionProvider", "CPUExecutionProvider")


class Device:
    """Where the GPU lane decodes and keeps batches: a batch decoder, ONNX Runtime's
    device name ('cuda'; 'cpu' in the tests) and number; the preparation graphs are
    made once per model geometry and kept for the next run."""

    def __init__(self, decoder: BatchDecoder, name: str, device_id: int = 0) -> None:
        self.decoder, self.name, self.device_id = decoder, name, device_id
        self._preparers: dict[Target, Preparer] = {}

    def preparer(self, target: Target, providers: Sequence[Any]) -> Preparer:
        if target not in self._preparers:
            self._preparers[target] = Preparer(target, providers)
        return self._preparers[target]


DeviceChoice = Callable[[Sequence[Tagger]], "Device | None"]


def device_for(
    taggers: Sequence[Tagger],
    decoder: Callable[[int], BatchDecoder] = NvDecoder,
    name: str = "cuda",
) -> Device | None:
    """The GPU lane's device for a run of `taggers`, where `choice.for_run` says the GPU
    decodes: nvImageCodec on the CUDA provider's device. A decoder that cannot start (a
    driver or library fault the checks at load cannot see) stops a run that asked for
    `gpu`; with `auto` the CPU decodes, with a warning."""
    if not for_run([t.gpu_decode for t in taggers]):
        return None
    cuda = taggers[0].session.get_provider_options().get("CUDAExecutionProvider", {})
    device_id = int(cuda.get("device_id", 0))
    try:
        return Device(decoder(device_id), name, device_id)
    except Exception as exc:  # nvImageCodec's errors are its own
        if taggers[0].gpu_decode == "gpu":
            raise ModelError(f"decode = gpu: nvImageCodec cannot start: {exc}") from None
        log.warning("JPEGs are decoded on the CPU: nvImageCodec cannot start: %s", exc)
        return None


def _providers(session: Any) -> list[Any]:
    """The session's own providers and options, for the preparation (see `_PREPARING`)."""
    options = session.get_provider_options()
    used = [p for p in session.get_providers() if p in _PREPARING]
    return [(p, options.get(p, {})) for p in used]


# An order the GPU lane refused: the order, its place and its slot, as `flow` sends them.
Refused = tuple[Ord, list[tuple[Batch[J], int]], list[tuple[Target, SlotAddress]]]


@dataclass(eq=False)
class _Held(Generic[J, Ord]):
    order: Ord
    batch: Batch[J]
    position: int
    address: SlotAddress  # its slot in the host ring, should the CPU decode it


class DeviceLane(Generic[J, Ord]):
    """One model's lane on the device: its batches there, in the regions the host ring
    uses, and the orders held for the batch being filled."""

    def __init__(self, device: Device, lane: Lane[J], max_pixels: int) -> None:
        import onnxruntime as ort

        self.device, self.lane, self.max_pixels = device, lane, max_pixels
        tagger = lane.tagger
        rows = lane.ring.depth * lane.size + (tagger.fixed_batch or 1)  # and a fixed batch's pad
        shape = (rows, *tagger.picture_shape)
        self._memory = ort.OrtValue.ortvalue_from_shape_and_type(
            list(shape), np.float32, device.name, device.device_id
        )
        at = Buffer(device.name, device.device_id, int(self._memory.data_ptr()), shape)
        self.rows = DeviceRows(at)
        self.preparer = device.preparer(lane.target, _providers(tagger.session))
        self.held: list[_Held[J, Ord]] = []

    def hold(self, order: Ord, batch: Batch[J], position: int, address: SlotAddress) -> None:
        """Keep an order for the GPU's next batch."""
        self.held.append(_Held(order, batch, position, address))

    def flush(self, last: bool) -> list[Refused[Ord, J]]:
        """Decode the orders held for full batches (`last`: every order held) in one batch
        into their rows; those refused, in job order, as the CPU decoders take them (their
        decodes are still pending)."""
        held = [e for e in self.held if last or len(e.batch.slots) >= self.lane.size]
        if not held:
            return []
        self.held = self.held[len(held) :]  # batches fill in order: full ones come first
        datas: list[bytes] = []
        readable: list[_Held[J, Ord]] = []
        refused: list[_Held[J, Ord]] = []
        for entry in held:
            data = _read(entry.order)
            (refused if data is None else readable).append(entry)
            if data is not None:
                datas.append(data)
        decoder = self.device.decoder
        result = split(datas, decoder.decode, decoder.buffer, self.max_pixels)
        refused += [readable[position] for position in result.refused]
        for position, (picture, _kept) in result.decoded.items():
            entry = readable[position]
            if self._fill(picture, entry):
                entry.batch.pending -= 1
                entry.batch.on_device.add(entry.position)
            else:
                refused.append(entry)
        refused.sort(key=lambda e: (e.batch.number, e.position))
        target = self.lane.target
        return [(e.order, [(e.batch, e.position)], [(target, e.address)]) for e in refused]

    def _fill(self, picture: Buffer, entry: _Held[J, Ord]) -> bool:
        row = self.lane.ring.first(entry.batch.number) + entry.position
        slot = self.rows[row : row + 1].buffer
        slot = Buffer(slot.device, slot.device_id, slot.address, slot.shape[1:])
        try:
            return self.preparer.fill(picture, slot)
        except Exception:  # ONNX Runtime's errors are untyped: the CPU path decodes it
            return False

    def batch_rows(self, batch: Batch[J]) -> DeviceRows:
        """A batch ready to run: the rows the CPU decoders wrote are copied in from the
        host ring (holes stay as they are: their results are dropped)."""
        first = self.lane.ring.first(batch.number)
        host = self.lane.ring.array
        for start, stop in _runs(batch):
            rows = slice(first + start, first + stop)
            self.preparer.upload(Buffer.of_array(host[rows]), self.rows[rows].buffer)
        return self.rows[first : first + len(batch.slots)]


def _runs(batch: Batch[Any]) -> list[tuple[int, int]]:
    """Runs of consecutive positions the CPU decoders filled."""
    runs: list[tuple[int, int]] = []
    for position, job in enumerate(batch.slots):
        if job is None or position in batch.on_device:
            continue
        if runs and runs[-1][1] == position:
            runs[-1] = (runs[-1][0], position + 1)
        else:
            runs.append((position, position + 1))
    return runs


def _read(order: _Ordered) -> bytes | None:
    """The file's bytes when it is still the content decided on; None leaves it to the
    CPU decoders, which read it again and say why it cannot be decoded."""
    try:
        data = read_again(order.path, order.expect)
    except DtindexError:
        return None
    return data if isinstance(data, bytes) else None
