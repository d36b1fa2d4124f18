"""`int8 = true` and `dtindex model check`, through real ONNX Runtime, quantizer and SQLite.

The graph is a MatMul over the flattened picture, then a sigmoid, so dynamic quantization
really changes it: scores move a little, not at all would mean nothing was quantized.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import age, save_graph
from onnx import helper, numpy_helper
from PIL import Image

from indexer.imaging.prepare import decode, fill, fit
from indexer.model_tables import ModelDef
from indexer.modelfile import read_model_file
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.models.versions import identify

TAGS = 30


def dense_model(folder: Path) -> Path:
    """An nhwc 8x8 model: 30 sigmoid scores of one MatMul over the 192 input values."""
    weights = np.random.default_rng(7).normal(0.0, 0.2, (192, TAGS)).astype(np.float32)
    inits = [
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat"),
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.full(TAGS, -1.5, np.float32), "bias"),
    ]
    nodes = [
        helper.make_node("Reshape", ["input", "flat"], ["flattened"]),
        helper.make_node("MatMul", ["flattened", "weights"], ["product"]),
        helper.make_node("Add", ["product", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    tags = [f"t{k}" for k in range(TAGS)]
    text = "name = dense\nshape = nhwc\nnormalize = true\n"
    return save_graph(folder, "dense", nodes, inits, ["batch", 8, 8, 3], tags, text)


def noise(path: Path, seed: int) -> Path:
    """A picture of random pixels: every input value differs, so every weight counts."""
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    age(path)
    return path


def configure(tmp_path: Path, extra: str = "int8 = true\n") -> Path:
    dense_model(tmp_path / "m")
    config = tmp_path / "deeptagger.toml"
    config.write_text(f'[models.dense]\nmodel = "m/dense.model"\n{extra}')
    return config


def definition(tmp_path: Path, variant: str = "") -> ModelDef:
    declared = read_model_file(tmp_path / "m" / "dense.model")
    return ModelDef("dense", "dense", declared.onnx, declared.tags, declared.spec, variant=variant)


def prepared(tagger: Tagger, paths: list[Path]) -> np.ndarray:
    batch = tagger.new_batch(len(paths))
    for slot, path in zip(batch, paths, strict=True):
        image = decode(path.read_bytes(), 10**8)[0]
        fill(slot, fit(image, tagger.spec, tagger.height, tagger.width), tagger.spec)
    return batch


def test_int8_copy_is_close_but_not_identical_and_its_own_version(tmp_path: Path, cli) -> None:
    configure(tmp_path)
    image = noise(tmp_path / "x.png", 1)
    code, out, err = cli("tag", "-t", "0", "dense", str(image))
    assert code == 0, err
    assert "converting to int8" in err and "meant for" not in err  # on the CPU: no warning
    assert len(out.splitlines()) == TAGS

    (copy,) = (tmp_path / "xdg-cache" / "dtindex" / "int8").glob("*.onnx")
    kinds = {node.op_type for node in onnx.load(str(copy)).graph.node}
    assert "MatMulInteger" in kinds and "MatMul" not in kinds  # really quantized
    options = RuntimeOptions(cpu=True, cache_dir=str(tmp_path / "xdg-cache" / "dtindex"))
    fp32, int8 = load(definition(tmp_path), options), load(definition(tmp_path, "int8"), options)
    batch = prepared(fp32, [noise(tmp_path / f"p{k}.png", k) for k in range(6)])
    difference = np.abs(int8.run(batch) - fp32.run(batch))
    assert 0 < difference.max() < 0.05  # close, and not the fp32 graph again
    versions = {identify(definition(tmp_path, v))[0] for v in ("", "fp16", "int8")}
    assert len(versions) == 3
    assert int8.version == identify(definition(tmp_path, "int8"))[0] != fp32.version


def test_fp16_versions_stored_before_int8_are_still_current(tmp_path: Path) -> None:
    """The fp16 copy's version is computed as before int8 existed: its results stay current."""
    dense_model(tmp_path / "m")
    model = definition(tmp_path, "fp16")
    digest = hashlib.sha256()
    for part in (model.onnx.read_bytes(), model.tags.read_bytes(), model.spec.canonical().encode()):
        digest.update(hashlib.sha256(part).digest())
    digest.update(b"fp16")
    assert identify(model)[0] == digest.hexdigest()[:16]


def test_int8_copy_is_converted_once_and_kept(tmp_path: Path, cli) -> None:
    configure(tmp_path)
    image = noise(tmp_path / "x.png", 1)
    first = cli("tag", "-t", "0", "dense", str(image))
    assert first[0] == 0 and "converting to int8" in first[2]
    (copy,) = (tmp_path / "xdg-cache" / "dtindex" / "int8").glob("*")  # no temporary left
    made = copy.stat()
    second = cli("tag", "-t", "0", "dense", str(image))
    assert second[0] == 0 and "converting" not in second[2]
    assert second[1] == first[1]
    kept = copy.stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)


def test_int8_without_a_cache_folder_still_runs(tmp_path: Path) -> None:
    dense_model(tmp_path / "m")
    int8 = load(definition(tmp_path, "int8"), RuntimeOptions(cpu=True))  # no cache_dir
    fp32 = load(definition(tmp_path), RuntimeOptions(cpu=True))
    batch = prepared(int8, [noise(tmp_path / "x.png", 1)])
    assert 0 < np.abs(int8.run(batch) - fp32.run(batch)).max() < 0.05  # the copy, from bytes


def test_scan_with_int8_then_without_keeps_both_versions(tmp_path: Path, cli) -> None:
    config = configure(tmp_path)
    gallery = tmp_path / "gallery"
    for k in range(3):
        noise(gallery / f"{k}.png", k)
    code, out, err = cli("scan", "--json", str(gallery))
    assert code == 0, err
    assert json.loads(out)["tagged"] == 3
    config.write_text('[models.dense]\nmodel = "m/dense.model"\n')
    code, out, err = cli("scan", "--json", str(gallery))
    assert code == 0, err
    assert json.loads(out)["tagged"] == 3  # fp32 is a version of its own: tagged again
    code, out, _ = cli("models")
    text = out.decode()
    int8_version = identify(definition(tmp_path, "int8"))[0]
    assert f"version {identify(definition(tmp_path))[0]}" in text
    assert f"stored: dense version {int8_version}" in text


def test_int8_and_fp16_together_name_the_model(tmp_path: Path, cli) -> None:
    configure(tmp_path, "fp16 = true\nint8 = true\n")
    code, _, err = cli("tag", "dense", str(noise(tmp_path / "x.png", 1)))
    assert code == 2
    assert "[models.dense]: fp16 = true and int8 = true cannot be combined" in err
    assert "deeptagger.toml" in err


def test_int8_setting_must_be_a_boolean(tmp_path: Path, cli) -> None:
    configure(tmp_path, 'int8 = "yes"\n')
    code, _, err = cli("tag", "dense", str(noise(tmp_path / "x.png", 1)))
    assert code == 2 and "[models.dense]: int8 = 'yes' must be true or false" in err


def without_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without the onnx package (ONNX Runtime's tools import it)."""
    for module in ("onnx", "onnxruntime.quantization", "onnxruntime.transformers.float16"):
        monkeypatch.setitem(sys.modules, module, None)


def test_int8_without_onnx_says_what_to_install(tmp_path: Path, cli, monkeypatch) -> None:
    configure(tmp_path)
    without_onnx(monkeypatch)
    code, _, err = cli("tag", "dense", str(noise(tmp_path / "x.png", 1)))
    assert code == 2 and "int8 = true needs the onnx package" in err and "dtindex[int8]" in err


def rows(out: bytes) -> dict[str, list[str]]:
    """The table's rows by copy name; the heading and column names are checked apart."""
    lines = out.decode().splitlines()
    header = ["copy", "flipped", "top-20", "max", "diff", "pictures/s", "vs", "fp32"]
    assert lines[1].split() == header
    return {line.split()[0]: line.split()[1:] for line in lines[2:]}


def test_model_check_compares_int8_and_fp16_with_fp32(tmp_path: Path, cli) -> None:
    configure(tmp_path, "int8 = true\nthreshold = 0.5\n")  # the baseline is still fp32
    paths = [noise(tmp_path / "pics" / f"{k}.png", k) for k in range(5)]
    (tmp_path / "pics" / "notes.txt").write_text("not a picture")
    code, out, err = cli("model", "check", "dense", "pics")
    assert code == 0, err
    assert out.decode().splitlines()[0] == (
        f"dense: 5 pictures, {TAGS} tags, threshold 0.5 ({5 * TAGS} decisions)"
    )
    table = rows(out)
    assert list(table) == ["fp32", "int8", "fp16"]
    assert table["fp32"][:3] == ["-", "-", "-"] and table["fp32"][4] == "1.00x"

    options = RuntimeOptions(cpu=True, cache_dir=str(tmp_path / "xdg-cache" / "dtindex"))
    fp32 = load(definition(tmp_path), options)
    batch = prepared(fp32, paths)
    for name in ("int8", "fp16"):
        reference, scores = fp32.run(batch), load(definition(tmp_path, name), options).run(batch)
        flipped, overlap, largest, speed, ratio = table[name]
        assert int(flipped) == np.count_nonzero((reference > 0.5) != (scores > 0.5))
        pairs = zip(reference, scores, strict=True)
        top = [len(set(np.argsort(-a)[:20]) & set(np.argsort(-b)[:20])) / 20 for a, b in pairs]
        assert float(overlap) == pytest.approx(np.mean(top), abs=5e-4)
        assert float(largest) == pytest.approx(np.abs(reference - scores).max(), rel=0.01)
        assert float(largest) > 0 and float(speed) > 0 and ratio.endswith("x")
    assert "fp16 is meant for GPUs" in err  # the fp16 copy ran on the CPU, and says so


def test_model_check_takes_relative_paths(tmp_path: Path, cli) -> None:
    configure(tmp_path, "")
    noise(tmp_path / "pics" / "a.png", 1)
    code, out, err = cli("model", "check", "dense", "./pics/../pics/a.png")
    assert code == 0, err
    assert out.decode().startswith("dense: 1 picture,")
    assert set(rows(out)) == {"fp32", "int8", "fp16"}


def test_model_check_names_what_fails(tmp_path: Path, cli) -> None:
    configure(tmp_path)
    good = noise(tmp_path / "a.png", 1)
    code, out, err = cli("model", "check", "nope", str(good))
    assert code == 2 and "no model named 'nope'" in err and "dense" in err and out == b""
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    noise(tmp_path / "pics" / "b.png", 2)
    code, out, err = cli("model", "check", "dense", str(good), "pics", "missing.png")
    assert code == 1, err  # a sample of a real gallery: the others are still compared
    assert "pics/broken.png:" in err and "missing.png: cannot read" in err
    assert "skipped 2 pictures that could not be read" in err
    assert out.decode().startswith("dense: 2 pictures,") and set(rows(out)) >= {"fp32", "int8"}
    code, out, err = cli("model", "check", "dense", "missing.png")
    assert code == 2 and "missing.png: cannot read" in err and out == b""
    assert "no picture could be read" in err


def test_model_check_without_onnx_says_why_each_copy_is_skipped(
    tmp_path: Path, cli, monkeypatch
) -> None:
    configure(tmp_path)
    without_onnx(monkeypatch)
    code, out, err = cli("model", "check", "dense", str(noise(tmp_path / "a.png", 1)))
    assert code == 2 and out == b""
    assert "fp16: skipped" in err and "dtindex[cuda]" in err
    assert "int8: skipped" in err and "dtindex[int8]" in err


def test_model_check_help_explains_the_numbers(cli, capsysbinary) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli("model", "check", "--help")
    text = " ".join(capsysbinary.readouterr().out.decode().split())
    assert stopped.value.code == 0
    for words in ("flipped", "top-20", "max diff", "pictures/s", "random-weight replica"):
        assert words in text
