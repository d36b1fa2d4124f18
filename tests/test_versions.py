"""Model versions: stable across starts, cached by the graph file's stat, changed by edits."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import write_model

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
