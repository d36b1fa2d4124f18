"""The GPU decode (issue 26) on the lent machine: throughput, refusals, agreement.

    python -m benchmarks.gpu_decode --pictures 2000 --out OUT          # on the GPU
    python -m benchmarks.gpu_decode --device cpu --pictures 8          # its plumbing, here

Illustration-size JPEGs (benchmarks.illustrations) go through dtindex's GPU path as the
pipeline would run it: `imaging.gpu.decode.split` with nvImageCodec (`NvDecoder`) in
batches of `--batch`, then the preparation graph (`imaging.gpu.prepare`) on the CUDA
provider, each picture written into its slot of a batch held on the device (WD's input:
448, NHWC, BGR, white). Printed: pictures a second for decode and preparation together
(the CPU path's figure is benchmarks.pipeline's decode ceiling), the files refused to the
CPU, and for `--compare` pictures how far the device's tensor lands from the CPU
preparation's (mean and largest per-picture mean difference, in grey levels).

`--device cpu` runs the same code with Pillow as the batch decoder (the tests' seam) and
the CPU provider: a check that the script works before device time is spent on it. The
pipeline's GPU lane (pipeline/device.py) runs these same parts; `benchmarks.pipeline
--decode gpu` measures it end to end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.illustrations import build_illustrations
from indexer.imaging.gpu.decode import NvDecoder, split
from indexer.imaging.gpu.prepare import Buffer, Preparer
from indexer.imaging.messages import Target
from indexer.imaging.prepare import decode, fill
from indexer.imaging.tasks import prepare_targets
from indexer.preparation import ModelSpec

TARGET = Target(ModelSpec(shape="nhwc", channels="bgr", pad="white"), 448, 448)
MAX_PIXELS = 100_000_000


def pillow_batch(datas: list[bytes]) -> list[Any]:
    return [np.ascontiguousarray(decode(d, MAX_PIXELS)[0].convert("RGB")) for d in datas]


def cpu_slot(data: bytes) -> np.ndarray:
    slot = np.empty((448, 448, 3), np.float32)
    [rgb], _ = prepare_targets(data, [TARGET], MAX_PIXELS)
    fill(slot, rgb, TARGET.spec)
    return slot


def run(datas: list[bytes], device: str, batch: int) -> tuple[float, list[int], np.ndarray]:
    """Decode and prepare every picture: seconds, positions refused, the tensors."""
    import onnxruntime as ort

    from indexer.models.runtime import preload_gpu_libraries

    if device == "cuda":
        preload_gpu_libraries()
        decoder = NvDecoder()
        decode_batch, buffer_of, providers = (
            decoder.decode,
            decoder.buffer,
            ["CUDAExecutionProvider"],
        )
    else:
        decode_batch, buffer_of, providers = pillow_batch, Buffer.of_array, ["CPUExecutionProvider"]
    preparer = Preparer(TARGET, providers)
    out = np.zeros((len(datas), 448, 448, 3), np.float32)
    refused: list[int] = []
    held = ort.OrtValue.ortvalue_from_shape_and_type([batch, 448, 448, 3], np.float32, device, 0)
    slot_bytes = 448 * 448 * 3 * 4
    started = time.perf_counter()
    for start in range(0, len(datas), batch):
        chunk = datas[start : start + batch]
        result = split(chunk, decode_batch, buffer_of, MAX_PIXELS)
        for position, (buffer, _) in result.decoded.items():
            address = held.data_ptr() + position * slot_bytes
            if not preparer.fill(buffer, Buffer(device, 0, address, (448, 448, 3))):
                result.refused.append(position)
        refused += [start + p for p in result.refused]
        out[start : start + len(chunk)] = held.numpy()[: len(chunk)]  # for --compare only
    return time.perf_counter() - started, sorted(refused), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pictures", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--compare", type=int, default=64, help="pictures checked on the CPU")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/dtindex-illustrations"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    datas = [p.read_bytes() for p in build_illustrations(args.cache, args.pictures)]
    seconds, refused, tensors = run(datas, args.device, args.batch)
    compared = [i for i in range(min(args.compare, len(datas))) if i not in refused]
    means = [float(np.abs(tensors[i] - cpu_slot(datas[i])).mean()) for i in compared]
    figures = {
        "device": args.device,
        "pictures": len(datas),
        "seconds": seconds,
        "pictures_per_s": len(datas) / seconds,
        "refused": len(refused),
        "compared": len(compared),
        "mean_grey_difference": float(np.mean(means)) if means else None,
        "largest_picture_mean_difference": max(means) if means else None,
    }
    print(json.dumps(figures, indent=1), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"gpu-decode-{args.device}.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
