"""Model versions: stable across starts, cached by the graph file's stat, changed by edits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_model

from indexer.errors import ConfigError
from indexer.model_tables import ModelDef
from indexer.modelfile import read_model_file
from indexer.models.versions import CACHE_FILE, identify


def definition(model: Path) -> ModelDef:
    declared = read_model_file(model)
    return ModelDef(declared.name, declared.name, declared.onnx, declared.tags, declared.spec)


def test_digest_is_cached_by_stat_and_recomputed_when_it_changes(tmp_path: Path) -> None:
    model = definition(write_model(tmp_path / "m", "probe", positions=[0, 1]))
    cache = tmp_path / "cache"
    first, _ = identify(model)
    assert identify(model, str(cache))[0] == first
    assert (cache / CACHE_FILE).is_file()
    stat = model.onnx.stat()
    data = bytearray(model.onnx.read_bytes())
    data[-1] ^= 1  # same size, same inode, same mtime: the cache is trusted
    with open(model.onnx, "r+b") as handle:
        handle.write(bytes(data))
    os.utime(model.onnx, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert identify(model, str(cache))[0] == first
    os.utime(model.onnx, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: rehashed
    assert identify(model, str(cache))[0] != first
    assert identify(model)[0] == identify(model, str(cache))[0]


def test_tags_and_settings_are_part_of_the_version(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m", "probe", positions=[0, 1])
    base = identify(definition(path))[0]
    path.write_text(path.read_text() + "normalize = true\n")
    assert identify(definition(path))[0] != base


def test_the_lanczos_preparation_keeps_the_versions_stored_before_it_had_a_name(
    tmp_path: Path,
) -> None:
    """Versions hash the settings' canonical text. `resize = lanczos` is the preparation
    every version before the fast one used: its text is the one they hashed, so their
    scores stay current; the bilinear preparation changes tensors, so it is a new version."""
    earlier = (
        '{"channels": "rgb", "interpret": "none", "normalize": false, "pad": "white", '
        '"shape": "nhwc", "size": null, "upscale": true}'
    )
    path = write_model(tmp_path / "m", "probe", positions=[0, 1])
    fast = identify(definition(path))[0]
    assert '"resize": "bilinear"' in definition(path).spec.canonical()
    path.write_text(path.read_text() + "resize = lanczos\n")
    lanczos = definition(path)
    assert lanczos.spec.canonical() == earlier
    assert identify(lanczos)[0] != fast
    path.write_text(path.read_text().replace("resize = lanczos", "resize = area"))
    with pytest.raises(ConfigError, match="resize = 'area' is not one of bilinear, lanczos"):
        definition(path)
