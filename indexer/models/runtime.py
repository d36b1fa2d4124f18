"""Loading a model into an ONNX Runtime session, checking its graph, and running batches.

The checks mirror deeptagger's, with messages that say what is wrong in the user's terms.
A graph whose batch dimension is fixed runs in chunks of that size: editing the dimension
is known to give wrong results for the published WD v1.4 v2 files.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.config import Decode
from indexer.errors import ModelError
from indexer.imaging.gpu.choice import gpu_decodes
from indexer.imaging.prepare import input_shape
from indexer.model_tables import ModelDef
from indexer.models.bound import Input, run_chunk
from indexer.models.taglist import TagList
from indexer.models.trial import check_batch_rows
from indexer.models.variants import VARIANTS_BY_NAME, variant_graph
from indexer.models.versions import identify, onnx_digest
from indexer.preparation import ModelSpec

log = logging.getLogger("dtindex")

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "ROCMExecutionProvider")
PREFERRED = ("CUDAExecutionProvider", "ROCMExecutionProvider", "CoreMLExecutionProvider")


@dataclass(frozen=True)
class RuntimeOptions:
    """How sessions are made: `--cpu`, `-o "EP;k=v"`, the thread budget, and where
    JPEGs are decoded (`decode`, `imaging.gpu.choice`)."""

    cpu: bool = False
    provider_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    threads: int = 0  # 0: ONNX Runtime's default (one per core)
    engine_cache: str = ""  # TensorRT engines are built once and kept here
    cache_dir: str = ""  # digests of .onnx files, so a start does not re-read them
    decode: Decode = "auto"

    @classmethod
    def cached(
        cls,
        threads: int,
        env: Mapping[str, str],
        *,
        cpu: bool = False,
        provider_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (),
        decode: Decode = "auto",
    ) -> RuntimeOptions:
        """Options keeping dtindex's caches (`cache_folder`): the one way the commands
        and the library make them, so no start hashes a model, converts its int8/fp16
        copy or builds its TensorRT engine again."""
        folder = cache_folder(env)
        engine_cache = str(folder / "tensorrt")
        return cls(cpu, provider_options, threads, engine_cache, str(folder), decode)


def cache_folder(env: Mapping[str, str]) -> Path:
    """Where digests, converted copies and engines are kept: $XDG_CACHE_HOME/dtindex."""
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dtindex"


def parse_provider_option(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`CUDAExecutionProvider;device_id=0;gpu_mem_limit=2000000000` to name and options."""
    name, *pairs = [p.strip() for p in text.split(";") if p.strip()]
    options = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ModelError(f"provider option {pair!r} in {text!r} is not key=value")
        options.append((key.strip(), value.strip()))
    if not name.endswith("ExecutionProvider"):
        raise ModelError(f"{name!r} is not an execution provider name (like CUDAExecutionProvider)")
    return name, tuple(options)


def choose_providers(options: RuntimeOptions, available: Sequence[str]) -> list[Any]:
    """Providers in deeptagger's order: TensorRT when asked, CUDA, ROCm, CoreML, CPU."""
    asked = dict(options.provider_options)
    for name in asked:
        if name not in available:
            log.warning("%s was asked for but is not installed; using the others", name)
    if options.cpu:
        names = ["CPUExecutionProvider"]
    else:
        names = [n for n in ("TensorrtExecutionProvider",) if n in asked and n in available]
        names += [n for n in PREFERRED if n in available]
        names.append("CPUExecutionProvider")
    settings = {name: dict(values) for name, values in asked.items()}
    if "TensorrtExecutionProvider" in names and options.engine_cache:
        trt = settings["TensorrtExecutionProvider"]
        trt.setdefault("trt_engine_cache_enable", "True")  # building an engine takes minutes
        trt.setdefault("trt_engine_cache_path", options.engine_cache)
    return [(n, settings[n]) if n in settings else n for n in names]


@dataclass(frozen=True)
class Tagger:
    """A loaded model: its session, input geometry, tags and version hash."""

    definition: ModelDef
    tags: TagList
    version: str
    height: int
    width: int
    fixed_batch: int | None
    session: Any
    input_name: str
    output_name: str
    bound: bool = False  # I/O binding: set when a GPU provider runs the session
    embedding_name: str | None = None  # an output stored per picture as its embedding
    gpu_decode: Decode = "cpu"  # "cpu", or how the GPU that may decode was asked for

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def spec(self) -> ModelSpec:
        return self.definition.spec

    @property
    def picture_shape(self) -> tuple[int, ...]:
        """One picture's tensor in the model's layout: a batch slot."""
        return input_shape(self.spec, 1, self.height, self.width)[1:]

    def new_batch(self, size: int) -> NDArray[np.float32]:
        return np.empty(input_shape(self.spec, size, self.height, self.width), np.float32)

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Scores (after sigmoid where the model emits logits), one row per picture."""
        return self.run_all(batch)[0]

    def run_all(self, batch: Input) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """Scores, and the embeddings where the model stores them, one row per picture;
        `batch` on the host or already on the model's device (`bound.DeviceRows`)."""
        step = self.fixed_batch or len(batch)
        names = [self.output_name] + ([self.embedding_name] if self.embedding_name else [])
        parts: list[list[NDArray[np.float32]]] = [[] for _ in names]
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            real = len(chunk)
            outs = run_chunk(self.session, self.input_name, chunk, step, names, self.bound)
            for part, out in zip(parts, outs, strict=True):
                part.append(np.asarray(out, dtype=np.float32).reshape(step, -1)[:real])
        scores, *embedding = [np.concatenate(p) if len(p) > 1 else p[0] for p in parts]
        if scores.shape[1] != len(self.tags):
            raise ModelError(
                f"{self.definition.onnx}: model gave {scores.shape[1]} scores "
                f"but the tag list has {len(self.tags)} tags"
            )
        if self.spec.interpret == "sigmoid":
            scores = (1.0 / (1.0 + np.exp(-scores))).astype(np.float32, copy=False)
        return scores, (embedding[0] if embedding else None)


def _dim(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


@functools.cache
def preload_gpu_libraries() -> str:
    """Load CUDA and cuDNN from the `nvidia-*` wheels beside onnxruntime-gpu, once.

    `pip install 'dtindex[cuda]'` brings them as wheels, which the dynamic loader does not
    search: without this, the CUDA provider fails to load and the session runs on the CPU.
    onnxruntime prints what it could not load to stdout, which carries our data; that text
    is returned (and logged) instead, for the fall-back warning."""
    import onnxruntime as ort

    if not hasattr(ort, "preload_dlls"):  # before 1.21: the system's CUDA or nothing
        return ""
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        try:
            ort.preload_dlls()
        except Exception as exc:  # a failed preload leaves the system's libraries
            print(exc)
    text = said.getvalue().strip()
    log.debug("CUDA libraries preloaded%s", f": {text}" if text else "")
    return text


def load(model: ModelDef, options: RuntimeOptions) -> Tagger:
    import onnxruntime as ort  # heavy import, only when a model is really used

    digest = onnx_digest(model.onnx, options.cache_dir)  # read once, also for a copy
    version, tags = identify(model, options.cache_dir, digest)

    session_options = ort.SessionOptions()
    if options.threads:
        session_options.intra_op_num_threads = options.threads
    session_options.log_severity_level = 3
    # Idle intra-op threads sleep rather than spin, leaving the cores to the decoders.
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = choose_providers(options, ort.get_available_providers())
    wanted = [p if isinstance(p, str) else p[0] for p in providers]
    preload_said = preload_gpu_libraries() if "CUDAExecutionProvider" in wanted else ""
    graph: str | bytes = str(model.onnx)
    if model.variant:
        graph = variant_graph(model.variant, model.onnx, digest, options.cache_dir)
    try:
        session = ort.InferenceSession(graph, session_options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{model.onnx}: ONNX Runtime cannot load it: {exc}") from None
    used = session.get_providers()
    log.debug("%s: session uses %s", model.name, ", ".join(used))
    gpu = gpu_decodes(options.decode, options.cpu, used)  # `gpu` where it cannot be: stops
    decode: Decode = options.decode if gpu else "cpu"
    if any(p in GPU_PROVIDERS for p in wanted) and not any(p in GPU_PROVIDERS for p in used):
        log.warning(
            "%s: a GPU provider is installed but the session fell back to CPU%s",
            model.name, f" ({preload_said})" if preload_said else "",
        )  # fmt: skip
    variant = VARIANTS_BY_NAME.get(model.variant)
    if variant and variant.for_gpu != any(p in GPU_PROVIDERS for p in used):
        log.warning("%s: %s", model.name, variant.misplaced)
    return replace(_checked(model, tags, version, session), gpu_decode=decode)


def _output(outputs: Sequence[Any], name: str | None, key: str, where: str) -> Any:
    """The graph output `name` (None: the first), or an error listing those there are."""
    if name is None:
        return outputs[0]
    for out in outputs:
        if out.name == name:
            return out
    there = ", ".join(repr(o.name) for o in outputs)
    raise ModelError(f"{where}: {key} = {name!r} is not an output of the graph (it has {there})")


def _checked(model: ModelDef, tags: TagList, version: str, session: Any) -> Tagger:
    where = f"{model.onnx}"
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelError(f"{where}: expected one input, the graph has {len(inputs)}")
    spec = model.spec
    tensor, out = inputs[0], _output(outputs, spec.output, "output", where)
    embedding = _output(outputs, spec.embedding, "embedding", where) if spec.embedding else None
    if tensor.type != "tensor(float)":
        raise ModelError(f"{where}: input {tensor.name!r} is {tensor.type}, not float")
    shape = list(tensor.shape)
    if len(shape) != 4:
        raise ModelError(f"{where}: input {tensor.name!r} has shape {shape}, expected 4 dimensions")
    c_index, hw = (1, (2, 3)) if spec.shape == "nchw" else (3, (1, 2))
    channels = _dim(shape[c_index])
    if channels is not None and channels != 3:
        raise ModelError(
            f"{where}: input shape {shape} has {channels} channels where shape={spec.shape} "
            f"expects 3 (is the layout nhwc or nchw?)"
        )
    height, width = _dim(shape[hw[0]]) or spec.size, _dim(shape[hw[1]]) or spec.size
    if height is None or width is None:
        raise ModelError(f"{where}: input height/width are symbolic {shape}; set size = N")
    width_out = _dim(list(out.shape)[-1]) if out.shape else None
    if width_out is not None and width_out != len(tags):
        raise ModelError(
            f"{where}: output {out.name!r} has {width_out} scores but {model.tags} "
            f"lists {len(tags)} tags"
        )
    gpu = bool(session.get_providers()) and session.get_providers()[0] in GPU_PROVIDERS
    tagger = Tagger(
        model, tags, version, height, width, _dim(shape[0]), session, tensor.name, out.name, gpu,
        embedding.name if embedding is not None else None,
    )  # fmt: skip
    if tagger.fixed_batch != 1:
        check_batch_rows(tagger, where)
    return tagger
