"""The one rule for where JPEGs are decoded: `decode = "auto" | "cpu" | "gpu"`.

`cpu` never uses the GPU. `gpu` requires it and stops the run, naming what is missing,
where it cannot be had: `--cpu`, a session not on the CUDA provider, nvImageCodec not
installed. `auto` takes the GPU where all of that holds and the CPU otherwise, silently
(a debug line says why). Until the GPU lane is wired into the pipeline's flow (issue 26:
the decode, the preparation graph and the fall-back are here, the hand-over of device
batches to the models is not), the GPU is never really chosen: `gpu` says so and stops,
`auto` decodes on the CPU.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence

from indexer.config import Decode
from indexer.errors import ModelError

log = logging.getLogger("dtindex")

INSTALL = "pip install 'dtindex[gpu]' (CUDA 12: nvidia-nvimgcodec-cu12[nvjpeg])"
NOT_WIRED = (
    "GPU decoding is not wired into the tagging pipeline yet (issue 26); use decode = auto or cpu"
)


def nvimgcodec_installed() -> bool:
    """Whether NVIDIA's nvImageCodec can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("nvidia.nvimgcodec") is not None
    except (ImportError, ValueError):  # no `nvidia` package at all
        return False


def unavailable(
    cpu: bool, providers: Sequence[str], installed: Callable[[], bool] = nvimgcodec_installed
) -> str | None:
    """Why the GPU cannot decode for a session with `providers`; None when it can."""
    if cpu:
        return "--cpu was given"
    if "CUDAExecutionProvider" not in providers:
        return "the model does not run on ONNX Runtime's CUDA provider (onnxruntime-gpu)"
    if not installed():
        return f"NVIDIA nvImageCodec is not installed: {INSTALL}"
    return None


def gpu_decodes(
    asked: Decode,
    cpu: bool,
    providers: Sequence[str],
    installed: Callable[[], bool] = nvimgcodec_installed,
) -> bool:
    """Whether the GPU decodes for a session with `providers` (see the module); raises
    ModelError where `gpu` was asked and cannot be had."""
    if asked == "cpu":
        return False
    why = unavailable(cpu, providers, installed) or NOT_WIRED
    if asked == "gpu":
        raise ModelError(f"decode = gpu: {why}")
    log.debug("JPEGs are decoded on the CPU: %s", why)
    return False
