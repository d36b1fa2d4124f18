"""Copies of a model's graph at lower precision (`fp16 = true`, `int8 = true`): opt-ins.

One place says, for each copy, what it is for, how it is made, where it is kept and how
its model version differs. A copy is converted once, by ONNX Runtime's own tools, and
kept in the cache folder under the original's digest (`<cache>/<name>/<digest>.onnx`),
written beside its final name and renamed, so a reader never sees half a graph. Its
scores differ from fp32, so a run on it is its own model version: the name is hashed into
the version and names the cache folder (a change to how a copy is made needs a new tag
in both places, or old copies and results would pass for new ones).
Inputs and outputs stay float32 in both, so the pipeline does not change.

fp16, for GPUs: scores agree with fp32 to within 1e-3 (`benchmarks/fp16.py`, random-weight
replicas, 16 photographs: largest difference 5.1e-4 for WD ViT v2 and 9.3e-4 for CAFormer;
17 of 126,451 decisions at 0.35 flip). On the CPU it runs slower (0.92x and 0.86x of fp32
on 2 cores). The converter in onnxconverter_common breaks the ML-Danbooru CAFormer graph
(a Cast type mismatch in a token mixer); the one in onnxruntime.transformers does not.

int8, for CPUs: dynamic quantization, which ONNX Runtime's guide advises for transformer
models (ViT, SwinV2, EVA, CAFormer; static quantization for CNNs). MatMul and Gemm weights
become int8 and their activations uint8, scaled per batch as they come (U8S8, the default
of quantize_dynamic). Conv stays float: ConvInteger had no U8S8 kernel in older releases
(microsoft/onnxruntime#6430). On x86-64 without VNNI, U8S8 can saturate; the speed gain
needs VNNI or ARM's dot-product instructions. How far scores move depends on the real
weights, so `dtindex model check` measures it on the user's model and pictures.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import ModelError
from indexer.model_tables import VARIANTS

log = logging.getLogger("dtindex")


@dataclass(frozen=True)
class Variant:
    """One kind of copy: its name (config key, cache folder, version tag) and its conversion."""

    name: str
    for_gpu: bool  # where it is meant to run; the other place gets a warning
    extra: str  # the dtindex extra that installs what the conversion needs
    convert: Callable[[Path, Path], None]  # (original, where to write the copy)
    misplaced: str  # said when it runs where it is not meant to


def _fp16(onnx_file: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(onnx.load(str(onnx_file)), keep_io_types=True)
    target.write_bytes(half.SerializeToString())


def _int8(onnx_file: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _root_logger_quiet():
        quantize_dynamic(
            onnx_file,
            target,
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
        )


FP16 = Variant(
    "fp16",
    for_gpu=True,
    extra="cuda",
    convert=_fp16,
    misplaced="fp16 is meant for GPUs; on the CPU it runs slower than fp32",
)
INT8 = Variant(
    "int8",
    for_gpu=False,
    extra="int8",
    convert=_int8,
    misplaced="int8 is meant for the CPU; on a GPU use fp32 or fp16",
)
# int8 first: the copy for machines without a GPU, the ones `model check` is mostly for.
VARIANTS_BY_NAME = {variant.name: variant for variant in (INT8, FP16)}
assert set(VARIANTS_BY_NAME) == set(VARIANTS), "indexer.config.VARIANTS names the same copies"


def unavailable(name: str) -> str | None:
    """Why copy `name` cannot be made here, or None: both conversions need the onnx package."""
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        return _install(name, exc.name or "onnx")
    return None


def _install(name: str, missing: str) -> str:
    extra = VARIANTS_BY_NAME[name].extra
    return (
        f"{name} = true needs the onnx package ({missing} is missing): "
        f"pip install 'dtindex[{extra}]'"
    )


def variant_graph(name: str, onnx_file: Path, digest: bytes, cache_dir: str) -> str | bytes:
    """A path to copy `name` of the graph (cached), or its bytes when it cannot be kept."""
    cached = Path(cache_dir) / name / f"{digest.hex()}.onnx" if cache_dir else None
    if cached is not None and cached.exists():
        return str(cached)
    log.info("%s: converting to %s (once; the copy is kept in the cache)", onnx_file.name, name)
    beside = _cache_folder(cached, name)
    # Made beside its final name, so the rename below is atomic (the same file system).
    with tempfile.TemporaryDirectory(dir=beside, prefix=".converting-") as folder:
        made = Path(folder) / "graph.onnx"
        _convert(name, onnx_file, made)
        if cached is None or beside is None:
            return made.read_bytes()
        try:
            os.replace(made, cached)
        except OSError as exc:
            log.warning("%s: cannot keep the %s copy (%s)", cached, name, exc.strerror or exc)
            return made.read_bytes()
    return str(cached)


def _cache_folder(cached: Path | None, name: str) -> Path | None:
    if cached is None:
        return None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("%s: cannot keep the %s copy (%s)", cached, name, exc.strerror or exc)
        return None
    return cached.parent


def _convert(name: str, onnx_file: Path, target: Path) -> None:
    try:
        VARIANTS_BY_NAME[name].convert(onnx_file, target)
    except ImportError as exc:
        raise ModelError(f"{onnx_file}: {_install(name, exc.name or 'onnx')}") from None
    except Exception as exc:  # onnx and the converters raise many untyped errors
        raise ModelError(f"{onnx_file}: cannot convert to {name}: {exc}") from None


@contextmanager
def _root_logger_quiet() -> Iterator[None]:
    """The quantizer advises through the root logger; with no handler there, its first
    message would install one printing to stderr for the rest of the process."""
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    quiet = logging.NullHandler()
    root.addHandler(quiet)
    try:
        yield
    finally:
        root.removeHandler(quiet)
