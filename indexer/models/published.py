"""Recognising models as people download them, and naming their family.

A deeptagger `.model` file; a Hugging Face style folder with `model.onnx` and
`selected_tags.csv` (WD v1.4 and v3); ML-Danbooru's `*.onnx` with `tags.csv`; a
DeepDanbooru project folder (`project.json`, `tags.txt`, a Keras model that needs
converting). Settings are those the families' authors use (shared/MODELS.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from indexer.errors import ConfigError
from indexer.settings import ModelSpec

WD = {"shape": "nhwc", "channels": "bgr", "normalize": False, "pad": "white", "size": 448}
ML = {
    "shape": "nchw",
    "channels": "rgb",
    "normalize": True,
    "pad": "stretch",
    "interpret": "sigmoid",
}
DD = {"shape": "nhwc", "channels": "rgb", "normalize": True, "pad": "edge", "size": 512}


@dataclass(frozen=True)
class Detected:
    family: str
    title: str
    onnx: Path | None = None
    tags: Path | None = None
    model_file: Path | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)


def family(spec: ModelSpec) -> str:
    """A family name from the settings alone, for listings."""
    if spec.shape == "nchw" and spec.pad == "stretch" and spec.interpret == "sigmoid":
        return "ML-Danbooru"
    if spec.shape == "nhwc" and spec.channels == "bgr" and spec.pad == "white":
        return "WD"
    if spec.shape == "nhwc" and spec.pad == "edge" and spec.normalize:
        return "DeepDanbooru"
    return "custom"


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
    if (folder / "selected_tags.csv").is_file() and onnx_files:
        chosen = folder / "model.onnx" if (folder / "model.onnx") in onnx_files else onnx_files[0]
        return Detected(
            "WD",
            folder.name,
            chosen,
            folder / "selected_tags.csv",
            settings=WD,
            thresholds={"threshold": 0.35, "general": 0.35, "character": 0.85},
        )
    if (folder / "tags.csv").is_file() and onnx_files:
        chosen = onnx_files[0]
        size = 640 if "tresnet" in chosen.name.lower() else 448
        return Detected(
            "ML-Danbooru",
            chosen.stem,
            chosen,
            folder / "tags.csv",
            settings={**ML, "size": size},
            thresholds={"threshold": 0.7},
        )
    if (folder / "project.json").is_file() and (folder / "tags.txt").is_file():
        return _deepdanbooru(folder, onnx_files)
    found = ", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "nothing"
    raise ConfigError(
        f"{folder}: no model layout recognised (found {found}); expected a .model file, "
        "model.onnx + selected_tags.csv, *.onnx + tags.csv, or a DeepDanbooru project"
    )


def _deepdanbooru(folder: Path, onnx_files: list[Path]) -> Detected:
    try:
        project = json.loads((folder / "project.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / 'project.json'}: cannot read: {exc}") from None
    size = int(project.get("image_width", 512))
    threshold = float(project.get("threshold", 0.5))
    onnx = onnx_files[0] if onnx_files else _convert_keras(folder)
    return Detected(
        "DeepDanbooru",
        folder.name,
        onnx,
        folder / "tags.txt",
        settings={**DD, "size": size},
        thresholds={"threshold": threshold},
    )


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


def hub_folder(repo_id: str, env: Mapping[str, str]) -> Path:
    """A hub repository's files: downloaded by huggingface_hub, or found in its cache."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return _cached(repo_id, env)
    patterns = ["*.onnx", "*.csv", "*.json", "*.txt"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # huggingface_hub's errors: offline, not found, gated
        message = f"{repo_id}: cannot download from the Hugging Face Hub (offline?): {exc}"
        raise ConfigError(message) from None


def _cached(repo_id: str, env: Mapping[str, str]) -> Path:
    """The hub cache's layout: models--OWNER--NAME/refs/main names a snapshot folder."""
    home = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    cache = Path(env.get("HF_HUB_CACHE") or home / "hub")
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    try:
        revision = (repo / "refs" / "main").read_text().strip()
    except OSError:
        raise ConfigError(
            f"{repo_id}: not a local path, and not in the Hugging Face cache at {cache}; "
            "pip install 'dtindex[hub]' to download it (needs the network)"
        ) from None
    folder = repo / "snapshots" / revision
    if not folder.is_dir():
        raise ConfigError(f"{repo_id}: the cache names revision {revision} but holds no {folder}")
    return folder


def looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not os.path.exists(text) and not text.startswith(".")
