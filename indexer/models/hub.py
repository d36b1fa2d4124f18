"""Models named by a Hugging Face repository id: downloaded, or found in the hub's cache."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from indexer.errors import ConfigError


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
