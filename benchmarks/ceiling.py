"""The decode ceiling of issue 13: the most pictures per second a pipeline can hope for.

The same pictures read, SHA-1 hashed, decoded and prepared the way dtindex's default
preparation (`resize = "bilinear"`) prepares them for a 448x448 WD-style model, one
process per core, nothing else: no model, no index, no moving pixels between processes.
JPEGs decode DCT-scaled (Pillow's `draft`) by the largest power of two that still covers
the fitted size; the picture shrinks with the triangle filter (grows with bicubic), is
padded white to 448x448 and turned into a float32 BGR array, the model's whole input.
Plain Pillow and NumPy on purpose, not dtindex's code, so that a slower dtindex cannot
slow its own yardstick; the same work on purpose, so that the ratio to it measures what
the pipeline costs beyond decoding (issue 26: a ceiling that did more work, the earlier
Lanczos preparation, flattered every ratio once dtindex's decoding got cheaper).

This module imports only NumPy and Pillow: the pool's processes are spawned, and each
imports it (and the main module) before its first picture.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

SIDE = 448
WHITE = (255, 255, 255)


def prepare(data: bytes) -> NDArray[np.float32]:
    """Decode, fit into SIDE x SIDE padded white, and give it as float32 BGR (HWC)."""
    with Image.open(io.BytesIO(data)) as opened:
        scale = min(SIDE / opened.width, SIDE / opened.height)
        size = (max(1, round(opened.width * scale)), max(1, round(opened.height * scale)))
        if opened.format == "JPEG":
            opened.draft("RGB", size)
        image = opened.convert("RGB")
    shrinking = size[0] <= image.width and size[1] <= image.height
    resample = Image.Resampling.BILINEAR if shrinking else Image.Resampling.BICUBIC
    big = image.width >= 3 * size[0] and image.height >= 3 * size[1]
    fitted = image.resize(size, resample, reducing_gap=3.0 if big else None)
    canvas = Image.new("RGB", (SIDE, SIDE), WHITE)
    canvas.paste(fitted, ((SIDE - size[0]) // 2, (SIDE - size[1]) // 2))
    return np.ascontiguousarray(np.asarray(canvas, dtype=np.float32)[:, :, ::-1])


def read_and_prepare(path: str) -> bytes:
    """One picture's whole job; gives its SHA-1 only (the array stays in the worker)."""
    data = Path(path).read_bytes()
    digest = hashlib.sha1(data).digest()
    prepare(data)
    return digest


def chunk_size(count: int, processes: int) -> int:
    """Chunks small enough that the processes finish together, big enough to be cheap."""
    return max(1, min(64, count // (processes * 16)))


def run(paths: list[Path], processes: int | None = None) -> list[bytes]:
    """Prepare every picture in a pool of one spawned process per core; their SHA-1s.

    The pool is started, drained, closed and joined inside the call (what to time), so
    its processes are reaped and their CPU time shows in RUSAGE_CHILDREN afterwards.
    """
    processes = processes or os.cpu_count() or 1
    names = [str(p) for p in paths]
    context = multiprocessing.get_context("spawn")  # the parent may hold ONNX Runtime threads
    pool = context.Pool(processes)
    try:
        digests = pool.map(read_and_prepare, names, chunksize=chunk_size(len(names), processes))
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return digests
