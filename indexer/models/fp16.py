"""Half-precision (fp16) copies of a model's graph, for GPUs: a documented opt-in.

`fp16 = true` in a model's table runs a copy of its graph with fp16 weights and
arithmetic, converted once by ONNX Runtime's own converter and kept in the cache folder
under the original's digest. Inputs and outputs stay float32 (`keep_io_types`), so the
pipeline does not change. Scores agree with fp32 to within 1e-3 (`benchmarks/fp16.py`,
random-weight replicas, 16 photographs: largest difference 5.1e-4 for WD ViT v2 and
9.3e-4 for CAFormer; 17 of 126,451 decisions at 0.35 flip), and a half-precision run is
its own model version. On the CPU an fp16 graph runs slower (0.92x and 0.86x of fp32 on
2 cores), so it is meant for CUDA and TensorRT.

The converter in onnxconverter_common breaks the ML-Danbooru CAFormer graph (a Cast
type mismatch in a token mixer); the one shipped in onnxruntime.transformers does not.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from indexer.errors import ModelError

log = logging.getLogger("dtindex")

FOLDER = "fp16"


def fp16_graph(onnx_file: Path, digest: bytes, cache_dir: str) -> str | bytes:
    """A path to the fp16 graph (cached), or its bytes when there is no cache folder."""
    cached = Path(cache_dir) / FOLDER / f"{digest.hex()}.onnx" if cache_dir else None
    if cached is not None and cached.exists():
        return str(cached)
    log.info("%s: converting to fp16 (once; the copy is kept in the cache)", onnx_file.name)
    data = _convert(onnx_file)
    if cached is None:
        return data
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, cached)  # a reader never sees half a graph
    except OSError as exc:
        log.warning("%s: cannot keep the fp16 copy (%s)", cached, exc.strerror or exc)
        return data
    return str(cached)


def _convert(onnx_file: Path) -> bytes:
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise ModelError(
            f"{onnx_file}: fp16 = true needs the onnx package ({exc.name} is missing): "
            "pip install 'dtindex[cuda]'"
        ) from None
    try:
        model = onnx.load(str(onnx_file))
        half = convert_float_to_float16(model, keep_io_types=True)
        return bytes(half.SerializeToString())
    except Exception as exc:  # onnx and the converter raise many untyped errors
        raise ModelError(f"{onnx_file}: cannot convert to fp16: {exc}") from None
