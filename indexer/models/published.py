"""Recognising models as people download them, and preparing pictures as their authors do.

Each family is recognised by the files its authors publish (shared/MODELS.md and the
README's model table give the sources). Names of graph outputs are read from the graph,
since some exports name them after internal tensors.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from indexer.errors import ConfigError, ModelError
from indexer.models.deepghs import read_category_thresholds, read_preprocess
from indexer.preparation import ModelSpec, parse_settings

WD = {"shape": "nhwc", "channels": "bgr", "normalize": False, "pad": "white", "size": 448}
ML = {
    "shape": "nchw",
    "channels": "rgb",
    "normalize": True,
    "pad": "stretch",
    "interpret": "sigmoid",
}
DD = {"shape": "nhwc", "channels": "rgb", "normalize": True, "pad": "edge", "size": 512}
CLIP = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
NCHW_RGB = {"shape": "nchw", "channels": "rgb"}
JOYTAG = {**NCHW_RGB, "pad": "white", "size": 448, **CLIP, "interpret": "sigmoid"}
CAMIE = {**NCHW_RGB, "pad": [124, 116, 104], "size": 512, **IMAGENET, "interpret": "sigmoid"}
CAMIE |= {"output": "refined_predictions"}
CL_TAGGER = {"shape": "nchw", "channels": "bgr", "pad": "white", "size": 448, **HALF}
CL_TAGGER |= {"interpret": "sigmoid"}
WD_LIMITS = {"threshold": 0.35, "general": 0.35, "character": 0.85}
_PRESETS: tuple[tuple[str, Mapping[str, object]], ...] = (
    ("JoyTag", JOYTAG), ("Camie", CAMIE), ("cl_tagger", CL_TAGGER),
    ("ML-Danbooru", ML), ("WD", WD), ("DeepDanbooru", DD),
)  # fmt: skip


@dataclass(frozen=True)
class Detected:
    family: str
    title: str
    onnx: Path | None = None
    tags: Path | None = None
    model_file: Path | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    thresholds: Mapping[str, object] = field(default_factory=dict)
    tags_in_graph: bool = False  # the tag list is in the graph's metadata (`tags`)


def family(spec: ModelSpec) -> str:
    """A family name from the settings alone, for listings: the preset they match."""
    for name, preset in _PRESETS:
        wanted = parse_settings(preset, name)
        if all(getattr(spec, key) == getattr(wanted, key) for key in preset if key != "size"):
            return name
    return "custom"


@lru_cache(maxsize=8)
def graph_io(onnx: Path) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Output names, input names and the graph's `tags` metadata ("" if none)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{onnx}: ONNX Runtime cannot load it: {exc}") from None
    outputs = tuple(o.name for o in session.get_outputs())
    inputs = tuple(i.name for i in session.get_inputs())
    return outputs, inputs, session.get_modelmeta().custom_metadata_map.get("tags", "")


def detect(source: Path) -> Detected:
    if source.is_file() and source.suffix == ".model":
        return Detected("deeptagger .model", source.stem, model_file=source)
    if source.is_file() and source.suffix == ".onnx":
        return _from_folder(source.parent, source)
    if source.is_dir():
        return _from_folder(source, None)
    raise ConfigError(f"{source}: not found")


def _from_folder(folder: Path, onnx: Path | None) -> Detected:
    onnx_files = [onnx] if onnx else sorted(folder.glob("*.onnx"))
    if not onnx_files and len(subfolders := [p for p in folder.iterdir() if p.is_dir()]) == 1:
        return _from_folder(subfolders[0], None)  # cl_tagger: the files in cl_tagger_1_02/
    if (folder / "project.json").is_file() and (folder / "tags.txt").is_file():
        return _deepdanbooru(folder, onnx_files)
    main = folder / "model.onnx" if (folder / "model.onnx") in onnx_files else None
    chosen = main or (onnx_files[0] if onnx_files else None)
    if chosen is not None:
        for recognise in _RECOGNISERS:
            found = recognise(folder, chosen)
            if found is not None:
                return found
    there = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
    raise ConfigError(
        f"{folder}: no model layout recognised (found {there}); see the README's model "
        "table for the files each family is published with"
    )


def _beside_model_file(folder: Path, onnx: Path) -> Detected | None:
    """A deeptagger `.model` file beside the graph, sharing its stem: it says how, so it
    comes before any guess from the files a family is published with."""
    declared = onnx.with_suffix(".model")
    if not declared.is_file():
        return None
    return Detected("deeptagger .model", declared.stem, model_file=declared)


def _deepghs(folder: Path, onnx: Path) -> Detected | None:
    """PixAI, animetimm and Camie as deepghs exports them: preprocess.json says how."""
    if not (folder / "preprocess.json").is_file() or not (folder / "selected_tags.csv").is_file():
        return None
    outputs, _, _ = graph_io(onnx)
    settings = read_preprocess(folder / "preprocess.json")
    settings["output"] = next((n for n in ("prediction", "output") if n in outputs), outputs[0])
    if "embedding" in outputs:
        settings["embedding"] = "embedding"
    limits: dict[str, object] = {"threshold": 0.4}  # imgutils' default
    if (folder / "thresholds.csv").is_file():
        categories = read_category_thresholds(folder / "thresholds.csv")
        limits.update({k: categories.pop(k) for k in ("general", "character") if k in categories})
        if categories:
            limits["thresholds"] = categories
    tags = folder / "selected_tags.csv"
    return Detected("deepghs (preprocess.json)", folder.name, onnx, tags, settings=settings,
                    thresholds=limits)  # fmt: skip


def _wd(folder: Path, onnx: Path) -> Detected | None:
    """WD v1.4 and v3 (`selected_tags.csv`), and deepghs' re-exports with an embedding
    (`tags_info.csv`: predictions first, then the embedding, named after a tensor)."""
    if (folder / "selected_tags.csv").is_file():
        _, inputs, _ = graph_io(onnx)
        version = "WD v3" if inputs == ("input",) else "WD v1.4"
        return Detected(version, folder.name, onnx, folder / "selected_tags.csv", settings=WD,
                        thresholds=WD_LIMITS)  # fmt: skip
    if (folder / "tags_info.csv").is_file():
        outputs, _, _ = graph_io(onnx)
        if len(outputs) < 2:
            raise ModelError(f"{onnx}: tags_info.csv beside it, but no embedding output")
        settings = {**WD, "output": outputs[0], "embedding": outputs[1]}
        return Detected("WD with embeddings", folder.name, onnx, folder / "tags_info.csv",
                        settings=settings, thresholds=WD_LIMITS)  # fmt: skip
    return None


def _joytag(folder: Path, onnx: Path) -> Detected | None:
    if not (folder / "top_tags.txt").is_file():
        return None
    tags = folder / "top_tags.txt"
    return Detected(
        "JoyTag", folder.name, onnx, tags, settings=JOYTAG, thresholds={"threshold": 0.4}
    )


def _camie(folder: Path, onnx: Path) -> Detected | None:
    metadata = sorted(folder.glob("*-metadata.json"))
    if not metadata:
        return None
    try:
        info = json.loads(metadata[0].read_text(encoding="utf-8"))
        size = int(info.get("model_info", {}).get("img_size", 512))
    except (OSError, ValueError, AttributeError, TypeError, RecursionError) as exc:
        raise ModelError(f"{metadata[0]}: cannot read: {exc}") from None
    named = folder / f"{metadata[0].name.removesuffix('-metadata.json')}.onnx"
    chosen = named if named.is_file() else onnx
    return Detected("Camie", named.stem, chosen, metadata[0], settings={**CAMIE, "size": size},
                    thresholds={"threshold": 0.5})  # fmt: skip


def _cl_tagger(folder: Path, onnx: Path) -> Detected | None:
    if not (folder / "tag_mapping.json").is_file():
        return None
    tags = folder / "tag_mapping.json"
    return Detected("cl_tagger", folder.name, onnx, tags, settings=CL_TAGGER, thresholds=WD_LIMITS)


def _ml_danbooru(folder: Path, onnx: Path) -> Detected | None:
    if not (folder / "tags.csv").is_file():
        return None
    size = 640 if "tresnet" in onnx.name.lower() else 448
    return Detected("ML-Danbooru", onnx.stem, onnx, folder / "tags.csv",
                    settings={**ML, "size": size}, thresholds={"threshold": 0.7})  # fmt: skip


def _deepdanbooru_onnx(folder: Path, onnx: Path) -> Detected | None:
    """A lone DeepDanbooru graph carrying its tag list in its metadata."""
    if not graph_io(onnx)[2]:
        return None
    return Detected("DeepDanbooru (tags in the graph)", onnx.stem, onnx, None, settings=DD,
                    thresholds={"threshold": 0.5}, tags_in_graph=True)  # fmt: skip


_RECOGNISERS: tuple[Callable[[Path, Path], Detected | None], ...] = (
    _beside_model_file, _deepghs, _wd, _joytag, _camie, _cl_tagger, _ml_danbooru,
    _deepdanbooru_onnx,
)  # fmt: skip


def tags_from_graph(onnx: Path) -> list[str]:
    """The `tags` metadata, a Python list literal (or JSON): read, never evaluated."""
    text = graph_io(onnx)[2]
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        try:
            names = json.loads(text)
        except (ValueError, RecursionError):
            raise ModelError(f"{onnx}: the 'tags' metadata is not a list of names") from None
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{onnx}: the 'tags' metadata is not a list of names")
    return list(names)


def _deepdanbooru(folder: Path, onnx_files: list[Path]) -> Detected:
    try:
        project = json.loads((folder / "project.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{folder / 'project.json'}: cannot read: {exc}") from None
    size = int(project.get("image_width", 512))
    threshold = float(project.get("threshold", 0.5))
    onnx = onnx_files[0] if onnx_files else _convert_keras(folder)
    return Detected("DeepDanbooru", folder.name, onnx, folder / "tags.txt",
                    settings={**DD, "size": size}, thresholds={"threshold": threshold})  # fmt: skip


def _convert_keras(folder: Path) -> Path:
    """DeepDanbooru ships a Keras model; tf2onnx turns it into ONNX once."""
    keras = sorted(folder.glob("*.h5"))
    if not keras:
        raise ConfigError(f"{folder}: a DeepDanbooru project without a .h5 or .onnx model")
    try:
        import tensorflow as tf  # type: ignore[import-not-found]
        import tf2onnx  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            f"{keras[-1]}: DeepDanbooru's Keras model must be converted to ONNX; install the "
            "converter with pip install 'dtindex[convert]' (tensorflow, tf2onnx), or convert it "
            "with tf2onnx yourself and put the .onnx file in the folder"
        ) from None
    target = keras[-1].with_suffix(".onnx")
    model = tf.keras.models.load_model(keras[-1], compile=False)
    tf2onnx.convert.from_keras(model, opset=13, output_path=str(target))
    return target
