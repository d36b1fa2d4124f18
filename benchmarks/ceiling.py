"""The decode ceiling of issue 13: the most pictures per second a pipeline can hope for.

The same pictures read, SHA-1 hashed, decoded with Pillow (JPEGs DCT-scaled to at least
twice 448 with `draft`), fitted into 448x448 with Lanczos (aspect kept, padded white) and
turned into a float32 BGR array, one process per core, nothing else: no model, no
index, no moving pixels between processes. Plain Pillow on purpose, not dtindex's own
code, so the yardstick does not move when dtindex's decoding does. The Lanczos step
takes the shortcut dtindex's quality rule allows (a box reduction to no less than three
times the target first, within half a grey level of exact Lanczos): without it the
ceiling would cost more than dtindex's own decoding and every ratio would flatter.

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
        if opened.format == "JPEG":
            opened.draft("RGB", (2 * SIDE, 2 * SIDE))
        image = opened.convert("RGB")
    scale = min(SIDE / image.width, SIDE / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    big = image.width >= 3 * size[0] and image.height >= 3 * size[1]
    fitted = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0 if big else None)
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
