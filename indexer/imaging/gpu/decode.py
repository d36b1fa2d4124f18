"""Batches of JPEGs decoded on the GPU by NVIDIA's nvImageCodec; the rest refused.

`split` decides per file: a JPEG (by content, `sniff.format_of`) the GPU may take, within
`max_pixels`, not CMYK (Pillow's conversion is the reference), goes to the GPU decoder in
one batch; anything else, and whatever the decoder returns None for (nvImageCodec's way
of saying it could not parse or decode an image, `Decoder.decode`'s documented result)
or raises on, is refused: the caller sends it to the CPU decoders unchanged, so a file
the GPU cannot do is decoded exactly as before.

`NvDecoder` asks nvImageCodec (0.6 or later: the releases for CUDA 12 and 13 alike) for
GPU backends only, so it never decodes on the CPU behind dtindex's back (the CPU decoders
do that, DCT-scaled), for interleaved 8-bit sRGB with the EXIF orientation applied (its
`DecodeParams` default, as the CPU path does), and waits for the decode on the stream
its `__cuda_array_interface__` names before the picture is handed to ONNX Runtime.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from indexer.imaging.codecs import orientation
from indexer.imaging.gpu.prepare import Buffer
from indexer.imaging.sniff import HEAD, format_of

# A batch decoder: one result per file, None for each it could not decode.
BatchDecode = Callable[[list[bytes]], Sequence[Any]]
# Where a decoded picture's pixels are, for binding (`NvDecoder.buffer`).
BufferOf = Callable[[Any], Buffer]


class BatchDecoder(Protocol):
    """What the GPU lane decodes with (`NvDecoder` in production; the tests give one
    that decodes with Pillow into host memory, on the same seam)."""

    def decode(self, datas: list[bytes]) -> Sequence[Any]:
        """One result per file, None for each it could not decode."""

    def buffer(self, image: Any) -> Buffer:
        """Where a decoded picture's pixels are, ready to be read."""


@dataclass
class Split:
    """A batch's outcome: decoded pictures by position (with what keeps their memory
    alive), and the positions refused, for the CPU decoders."""

    decoded: dict[int, tuple[Buffer, Any]] = field(default_factory=dict)
    refused: list[int] = field(default_factory=list)


def shown_size(data: bytes) -> tuple[int, int] | None:
    """A JPEG's height and width as shown (EXIF orientation applied), or None when the
    GPU should not take it: not a JPEG, CMYK, or a header Pillow cannot read."""
    if format_of(data[:HEAD]) != "jpeg":
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("RGB", "L"):  # CMYK, YCCK: Pillow's colours are the reference
                return None
            width, height = image.size
            turned = orientation(image) in (5, 6, 7, 8)
    except Exception:  # a header Pillow cannot parse: the CPU path says what is wrong
        return None
    return (width, height) if turned else (height, width)


def split(
    datas: Sequence[bytes], decode: BatchDecode, buffer_of: BufferOf, max_pixels: int
) -> Split:
    """Decode what the GPU takes in one batch; refuse the rest (see the module)."""
    result = Split()
    taken: list[tuple[int, tuple[int, int]]] = []
    for position, data in enumerate(datas):
        size = shown_size(data)
        if size is None or size[0] * size[1] > max_pixels:
            result.refused.append(position)  # over the limit: the CPU decodes it DCT-scaled
        else:
            taken.append((position, size))
    if not taken:
        return result
    try:
        images = list(decode([datas[position] for position, _ in taken]))
    except Exception:  # the whole batch failed (out of device memory, a driver error)
        images = [None] * len(taken)
    for (position, size), image in zip(taken, images, strict=True):
        buffer = _checked(image, size, buffer_of)
        if buffer is None:
            result.refused.append(position)
        else:
            result.decoded[position] = (buffer, image)
    result.refused.sort()
    return result


def _checked(image: Any, size: tuple[int, int], buffer_of: BufferOf) -> Buffer | None:
    """The picture's buffer when it is what the preparation expects: as shown, 3 channels."""
    if image is None:
        return None
    try:
        buffer = buffer_of(image)
    except Exception:
        return None
    return buffer if buffer.shape == (*size, 3) else None


class NvDecoder:
    """nvImageCodec's batch decoder on one GPU (import and make it only where `choice`
    said the GPU decodes)."""

    def __init__(self, device_id: int = 0) -> None:
        from nvidia import nvimgcodec

        gpu = (nvimgcodec.GPU_ONLY, nvimgcodec.HYBRID_CPU_GPU, nvimgcodec.HW_GPU_ONLY)
        self.device_id = device_id
        self.decoder = nvimgcodec.Decoder(
            device_id=device_id, backends=[nvimgcodec.Backend(kind) for kind in gpu]
        )
        self.params = nvimgcodec.DecodeParams(
            apply_exif_orientation=True, color_spec=nvimgcodec.ColorSpec.SRGB,
            allow_any_depth=False,
        )  # fmt: skip

    def decode(self, datas: list[bytes]) -> list[Any]:
        return list(self.decoder.decode(datas, params=self.params))

    def buffer(self, image: Any) -> Buffer:
        """The decoded picture's device memory, once the decode has finished on it."""
        face = image.__cuda_array_interface__
        shape = tuple(face["shape"])
        strides = face.get("strides")
        if face["typestr"] != "|u1" or (strides is not None and strides[0] != shape[1] * 3):
            raise ValueError(f"not packed 8-bit pixels: {face}")
        stream = face.get("stream")
        if stream is not None:
            _synchronize(stream)
        return Buffer("cuda", self.device_id, int(face["data"][0]), shape)


def _synchronize(stream: int) -> None:
    """Wait for `stream` (1 and 2 name CUDA's default streams, which cudaStreamSynchronize
    takes as they are), so ONNX Runtime's own streams read the finished picture."""
    status = _cudart().cudaStreamSynchronize(ctypes.c_void_p(stream))
    if status != 0:
        raise RuntimeError(f"cudaStreamSynchronize failed with CUDA error {status}")


_CUDART: list[Any] = []


def _cudart() -> Any:
    """The CUDA runtime ONNX Runtime's CUDA provider already loaded (by its soname)."""
    if not _CUDART:
        for name in ("libcudart.so.13", "libcudart.so.12", "libcudart.so"):
            try:
                _CUDART.append(ctypes.CDLL(name))
                break
            except OSError:
                continue
        else:
            raise RuntimeError("the CUDA runtime (libcudart) cannot be loaded")
    return _CUDART[0]
