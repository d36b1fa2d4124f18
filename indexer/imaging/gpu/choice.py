"""The one rule for where JPEGs are decoded: `decode = "auto" | "cpu" | "gpu"`.

`cpu` never uses the GPU. `gpu` requires it and stops the run, naming what is missing,
where it cannot be had: `--cpu`, a session not on the CUDA provider, nvImageCodec not
installed. `auto` takes the GPU where all of that holds and the CPU otherwise, silently
(a debug line says why).

The GPU lane (`pipeline.device`) feeds one model's batches, so it applies to a run of
one model (`for_run`): a run of several models decodes each picture once on the CPU for
all of them, as before, and says so. A Ray fan-out (`scan --ray`) decodes on its
workers' CPUs (`core.scanning.cluster`).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence

from indexer.config import Decode
from indexer.errors import ModelError

log = logging.getLogger("dtindex")

INSTALL = "pip install 'dtindex[gpu]' (CUDA 12: nvidia-nvimgcodec-cu12[nvjpeg])"


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
    why = unavailable(cpu, providers, installed)
    if why is None:
        return True
    if asked == "gpu":
        raise ModelError(f"decode = gpu: {why}")
    log.debug("JPEGs are decoded on the CPU: %s", why)
    return False


def for_run(models: Sequence[Decode]) -> bool:
    """Whether a run decodes JPEGs on the GPU, given for each of its models "cpu" where
    its session cannot (`gpu_decodes`), else how the GPU was asked for: only a run of one
    model does (see the module); a run of several says so, as a warning where `gpu` was
    asked."""
    if len(models) == 1:
        return models[0] != "cpu"
    if any(m != "cpu" for m in models):
        say = log.warning if "gpu" in models else log.info
        say("JPEGs are decoded on the CPU: the GPU lane feeds a run of one model, "
            "this run has %d", len(models))  # fmt: skip
    return False
