"""Every family `model add` recognises, from look-alike folders as their authors publish
them. Each graph outputs the whole prepared tensor (8x8 pixels), so a test reads back
exactly how dtindex prepared a picture and compares it with the family's reference
preparation, written out here from the authors' code (see the README's model table).

The picture is a solid colour twice as wide as it is high: after fitting, rows 0 and 7
are padding, rows 3 and 4 the picture; rows next to the border are not compared, where
pad-then-resize and resize-then-pad legitimately differ.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import picture
from onnx import TensorProto, helper, numpy_helper

from indexer.library import load_model

SIDE = 8
COLOUR = (200, 40, 90)
TAGS = [f"t{i}" for i in range(3 * SIDE * SIDE)]
CLIP = ([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711])
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
HALF = ([0.5] * 3, [0.5] * 3)


def reveal(
    path: Path,
    layout: str,
    outputs: Sequence[tuple[str, str]] = (("output", "flat"),),
    metadata: dict[str, str] | None = None,
    external: bool = False,
) -> Path:
    """A graph whose outputs are the prepared tensor ("flat"), half of it ("half"), its
    channel means ("mean": an embedding), NaN ("nan") or it cast to int64 ("int")."""
    dims: list[int | str] = (
        ["batch", 3, SIDE, SIDE] if layout == "nchw" else ["batch", SIDE, SIDE, 3]
    )
    axes = [2, 3] if layout == "nchw" else [1, 2]
    inits = [
        numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
        numpy_helper.from_array(np.array(axes, np.int64), "axes"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half_"),
        numpy_helper.from_array(np.zeros(len(TAGS), np.float32), "bias_"),  # the weights
    ]
    nodes = [
        helper.make_node("Reshape", ["input", "shape"], ["reshaped_"]),
        helper.make_node("Add", ["reshaped_", "bias_"], ["flat_"]),
    ]
    values = []
    for name, kind in outputs:
        if kind == "flat":
            nodes.append(helper.make_node("Identity", ["flat_"], [name]))
        elif kind == "half":
            nodes.append(helper.make_node("Mul", ["flat_", "half_"], [name]))
        elif kind == "mean":
            nodes.append(helper.make_node("ReduceMean", ["input", "axes"], [name], keepdims=0))
        elif kind == "nan":  # the log of minus the channel means: not a number
            nodes.append(helper.make_node("ReduceMean", ["input", "axes"], ["m_"], keepdims=0))
            nodes.append(helper.make_node("Neg", ["m_"], ["neg_"]))
            nodes.append(helper.make_node("Log", ["neg_"], [name]))
        else:
            nodes.append(helper.make_node("Cast", ["flat_"], [name], to=TensorProto.INT64))
        kind_type = TensorProto.INT64 if kind == "int" else TensorProto.FLOAT
        values.append(helper.make_tensor_value_info(name, kind_type, None))
    graph = helper.make_graph(
        nodes,
        "reveal",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        values,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=256)  # fmt: skip
    else:
        onnx.save_model(model, str(path))
    return path


def expected(layout: str, channels: str, pad: tuple[int, int, int] | str,
             scale: tuple[list[float], list[float]] | None) -> np.ndarray:  # fmt: skip
    """The reference tensor for the solid picture: rows (of the model's layout) 0, 3, 4, 7."""
    rgb = np.empty((SIDE, SIDE, 3), np.float32)
    rgb[...] = COLOUR if pad in ("edge", "stretch") else pad
    rgb[2:6] = COLOUR
    values = rgb
    if scale is not None:
        mean, std = (np.asarray(v, np.float32) for v in scale)
        values = (rgb / 255.0 - mean) / std
    if channels == "bgr":
        values = values[..., ::-1]
    rows = values[[0, 3, 4, 7]]
    return rows.transpose(2, 0, 1) if layout == "nchw" else rows


def prepared(scores: dict[str, float], layout: str, logits: bool) -> np.ndarray:
    flat = np.array([scores[t] for t in TAGS], np.float64)
    if logits:  # the model's logits went through a sigmoid: undo it
        flat = np.log(flat / (1.0 - flat))
    tensor = flat.reshape((3, SIDE, SIDE) if layout == "nchw" else (SIDE, SIDE, 3))
    return tensor[:, [0, 3, 4, 7]] if layout == "nchw" else tensor[[0, 3, 4, 7]]


def add_and_tag(cli, tmp_path: Path, source: Path, family: str) -> tuple[dict[str, float], dict]:
    config = tmp_path / "deeptagger.toml"
    config.touch()
    code, _, err = cli("--config", str(config), "model", "add", "fam", str(source))
    assert code == 0, err
    assert f"added fam ({family}" in err, err
    image = picture(tmp_path / "wide.png", COLOUR, size=(2 * SIDE, SIDE))
    with load_model("fam", config=config) as model:
        [(_, scores)] = list(model.tag([image], threshold=-np.inf))
    listed = cli("--config", str(config), "models")[1].decode()
    known = {"JoyTag", "Camie", "cl_tagger", "WD", "DeepDanbooru"}
    assert f"fam: {family.split()[0]}" in listed or family.split()[0] not in known, listed
    return scores, tomllib.loads(config.read_text())["models"]["fam"]


def empty_config(tmp_path: Path) -> Path:
    (tmp_path / "c.toml").touch()
    return tmp_path / "c.toml"


def tags_csv(folder: Path, name: str, header: str, row: str) -> None:
    lines = [header] + [row.format(i=i, tag=t) for i, t in enumerate(TAGS)]
    (folder / name).write_text("\n".join(lines) + "\n")


def test_joytag(cli, tmp_path: Path) -> None:
    folder = tmp_path / "joytag"
    reveal(folder / "model.onnx", "nchw")
    (folder / "top_tags.txt").write_text("\n".join(TAGS) + "\n")
    scores, _ = add_and_tag(cli, tmp_path, folder, "JoyTag")
    want = expected("nchw", "rgb", (255, 255, 255), CLIP)
    assert np.allclose(prepared(scores, "nchw", logits=True), want, atol=2e-3)


def test_camie_v2_uses_the_refined_predictions(cli, tmp_path: Path) -> None:
    folder = tmp_path / "camie"
    outputs = [("initial_predictions", "half"), ("refined_predictions", "flat"),
               ("selected_candidates", "int")]  # fmt: skip
    reveal(folder / "camie-tagger-v2.onnx", "nchw", outputs)
    kinds = ["general", "artist", "year", "copyright"]
    mapping = {
        "idx_to_tag": {str(i): t for i, t in enumerate(TAGS)},
        "tag_to_category": {t: kinds[i % 4] for i, t in enumerate(TAGS)},
    }
    metadata = {"dataset_info": {"tag_mapping": mapping}, "model_info": {"img_size": 512}}
    (folder / "camie-tagger-v2-metadata.json").write_text(json.dumps(metadata))
    scores, table = add_and_tag(cli, tmp_path, folder, "Camie")
    assert table["output"] == "refined_predictions" and table["pad"] == [124, 116, 104]
    want = expected("nchw", "rgb", (124, 116, 104), IMAGENET)
    assert np.allclose(prepared(scores, "nchw", logits=True), want, atol=2e-3)


def test_cl_tagger_from_its_repository_folder(cli, tmp_path: Path) -> None:
    folder = tmp_path / "cl_tagger" / "cl_tagger_1_02"
    reveal(folder / "model.onnx", "nchw")
    kinds = ["General", "Character", "Quality", "Model"]
    mapping = {str(i): {"tag": t, "category": kinds[i % 4]} for i, t in enumerate(TAGS)}
    (folder / "tag_mapping.json").write_text(json.dumps(mapping))
    scores, _ = add_and_tag(cli, tmp_path, folder.parent, "cl_tagger")
    want = expected("nchw", "bgr", (255, 255, 255), HALF)
    assert np.allclose(prepared(scores, "nchw", logits=True), want, atol=2e-3)


def test_deepdanbooru_with_its_tags_in_the_graph(cli, tmp_path: Path) -> None:
    onnx_file = tmp_path / "dd" / "deepdanbooru.onnx"
    reveal(onnx_file, "nhwc", [("output", "flat")], metadata={"tags": repr(TAGS)})
    scores, table = add_and_tag(cli, tmp_path, onnx_file, "DeepDanbooru (tags in the graph)")
    assert table["tags"] == "fam.tags"
    assert (tmp_path / "fam.tags").read_text().split() == TAGS
    want = expected("nhwc", "rgb", "edge", ([0.0] * 3, [1.0] * 3))
    assert np.allclose(prepared(scores, "nhwc", logits=False), want, atol=1e-5)


def test_deepdanbooru_tags_are_parsed_never_evaluated(cli, tmp_path: Path) -> None:
    onnx_file = tmp_path / "dd" / "evil.onnx"
    evil = "__import__('os').system('touch pwned')"
    reveal(onnx_file, "nhwc", metadata={"tags": evil})
    code, _, err = cli(
        "--config", str(empty_config(tmp_path)), "model", "add", "evil", str(onnx_file)
    )
    assert code == 2 and "not a list of names" in err
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "evil.tags").exists()


def test_wd_with_an_embedding_stores_it_and_finds_alike_pictures(cli, tmp_path: Path) -> None:
    folder = tmp_path / "wd-emb"
    reveal(
        folder / "model.onnx", "nhwc", [("output", "flat"), ("StatefulPartitionedCall:1", "mean")]
    )
    tags_csv(folder, "tags_info.csv", "tag_id,name,category,count,aliases,is_core,is_attire",
             '{i},{tag},0,5,"[]",True,False')  # fmt: skip
    scores, table = add_and_tag(cli, tmp_path, folder, "WD with embeddings")
    assert table["embedding"] == "StatefulPartitionedCall:1"
    want = expected("nhwc", "bgr", (255, 255, 255), None)
    assert np.allclose(prepared(scores, "nhwc", logits=False), want, atol=1e-3)


def test_deepghs_stages_pixai(cli, tmp_path: Path) -> None:
    folder = tmp_path / "pixai"
    reveal(folder / "model.onnx", "nchw",
           [("embedding", "mean"), ("logits", "half"), ("prediction", "flat")])  # fmt: skip
    tags_csv(
        folder, "selected_tags.csv", "id,tag_id,name,category,count,ips", "{i},{i},{tag},0,5,[]"
    )
    stages = [
        {"antialias": True, "interpolation": "bilinear", "max_size": None, "size": [448, 448],
         "type": "resize"},
        {"type": "to_tensor"},
        {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "type": "normalize"},
    ]  # fmt: skip
    (folder / "preprocess.json").write_text(json.dumps({"stages": stages}))
    (folder / "thresholds.csv").write_text(
        "category,name,threshold\n0,general,0.3\n4,character,0.85\n"
    )
    scores, table = add_and_tag(cli, tmp_path, folder, "deepghs")
    assert (table["pad"], table["output"], table["embedding"]) == (
        "stretch",
        "prediction",
        "embedding",
    )
    assert (table["general"], table["character"]) == (0.3, 0.85)
    want = expected("nchw", "rgb", "stretch", HALF)
    assert np.allclose(prepared(scores, "nchw", logits=False), want, atol=1e-5)


def test_deepghs_stages_animetimm(cli, tmp_path: Path) -> None:
    folder = tmp_path / "animetimm"
    reveal(folder / "model.onnx", "nchw",
           [("embedding", "mean"), ("logits", "half"), ("prediction", "flat")])  # fmt: skip
    tags_csv(folder, "selected_tags.csv", "tag_id,name,category,count,best_threshold",
             "{i},{tag},1,5,0.25")  # fmt: skip
    (folder / "categories.json").write_text(json.dumps([{"category": 1, "name": "Artist"}]))
    pad = {"background_color": "white", "interpolation": "bilinear", "size": [512, 512],
           "type": "pad_to_size"}  # fmt: skip
    test = [
        pad,
        {
            "antialias": True,
            "interpolation": "bicubic",
            "max_size": None,
            "size": 448,
            "type": "resize",
        },
        {"size": [448, 448], "type": "center_crop"},
        {"type": "maybe_to_tensor"},
        {"mean": IMAGENET[0], "std": IMAGENET[1], "type": "normalize"},
    ]
    (folder / "preprocess.json").write_text(json.dumps({"pre": [pad], "test": test, "val": test}))
    scores, table = add_and_tag(cli, tmp_path, folder, "deepghs")
    assert table["pad"] == "white"  # size: the graph's own 8 (it fixes one)
    want = expected("nchw", "rgb", (255, 255, 255), IMAGENET)
    assert np.allclose(prepared(scores, "nchw", logits=False), want, atol=1e-3)


def test_a_stage_that_crops_is_refused_by_name(cli, tmp_path: Path) -> None:
    folder = tmp_path / "crop"
    reveal(folder / "model.onnx", "nchw", [("prediction", "flat")])
    tags_csv(folder, "selected_tags.csv", "tag_id,name,category,count", "{i},{tag},0,5")
    stages = [{"size": 448, "type": "resize"}, {"size": [448, 448], "type": "center_crop"}]
    (folder / "preprocess.json").write_text(json.dumps({"test": stages}))
    code, _, err = cli("--config", str(empty_config(tmp_path)), "model", "add", "crop", str(folder))
    assert code == 2 and "stage 1 ('resize')" in err and "crops the picture" in err


@pytest.mark.parametrize("where", ["toml", "model"])
def test_settings_by_hand_and_external_weights(cli, tmp_path: Path, where: str) -> None:
    """mean/std, a pad colour and named outputs from a hand-written table or `.model`
    file; the weights in a `.onnx.data` file beside the graph, part of its version."""
    outputs = [("first", "half"), ("second", "flat"), ("vec", "mean")]
    onnx_file = reveal(tmp_path / "m" / "net.onnx", "nchw", outputs, external=True)
    (tmp_path / "m" / "net.tags").write_text("\n".join(TAGS) + "\n")
    settings = {"shape": "nchw", "channels": "bgr", "output": "second", "embedding": "vec"}
    config = tmp_path / "deeptagger.toml"
    if where == "toml":
        table = "".join(f'{k} = "{v}"\n' for k, v in settings.items())
        table += "pad = [10, 20, 30]\nmean = [0.1, 0.2, 0.3]\nstd = [0.5, 0.25, 2.0]\n"
        config.write_text(f'[models.fam]\nonnx = "m/net.onnx"\ntags = "m/net.tags"\n{table}')
    else:
        text = "".join(f"{k} = {v}\n" for k, v in settings.items())
        text += "pad = 10,20,30\nmean = 0.1,0.2,0.3\nstd = 0.5,0.25,2\n"
        (tmp_path / "m" / "net.model").write_text(text)
        config.write_text('[models.fam]\nmodel = "m/net.model"\n')
    image = picture(tmp_path / "wide.png", COLOUR, size=(2 * SIDE, SIDE))
    with load_model("fam", config=config) as model:
        [(_, scores)] = list(model.tag([image], threshold=-np.inf))
        version = model.version
    want = expected("nchw", "bgr", (10, 20, 30), ([0.1, 0.2, 0.3], [0.5, 0.25, 2.0]))
    assert np.allclose(prepared(scores, "nchw", logits=False), want, atol=1e-5)
    with open(onnx_file.with_name("net.onnx.data"), "ab") as data:
        data.write(b"\0" * 64)  # other weights under the same graph
    with load_model("fam", config=config) as model:
        assert model.version != version


def test_thresholds_for_any_category_and_per_tag(cli, tmp_path: Path) -> None:
    """Categories beyond general/character by name (a model table's `thresholds`, or
    `--category`), and the authors' per-tag `best_threshold` with `--tag-thresholds`."""
    from conftest import write_model

    write_model(tmp_path / "m", "probe", positions=[0, 1, 2], settings="normalize = true\n")
    (tmp_path / "m" / "tags.csv").write_text(
        "name,category,best_threshold\nred,1,0.9\ngreen,10,0.6\nblue,0,0.1\n"
    )  # artist, year, general: the values are R, G and B over 255
    config = tmp_path / "deeptagger.toml"
    config.write_text(
        'database = "index.sqlite"\n[models.p]\nonnx = "m/probe.onnx"\ntags = "m/tags.csv"\n'
        "normalize = true\nthreshold = 0.35\nthresholds = { artist = 0.95 }\n"
    )
    gallery = tmp_path / "gallery"
    picture(gallery / "a.png", (255, 77, 51), old=False)
    assert cli("--config", str(config), "scan", str(gallery))[0] == 0

    def exported(*options: str) -> list[str]:
        code, out, err = cli("--config", str(config), "export", "-m", "p", "--id", "path", *options)
        assert code == 0, err
        return [line.split("\t")[1] for line in out.decode().splitlines()]

    assert exported() == ["red"]  # artist 1.0 > 0.95; year 0.3 and general 0.2 < 0.35
    assert exported("--category", "year=0.25") == ["red", "green"]
    assert exported("--category", "artist=1") == []
    assert exported("--tag-thresholds") == ["red", "blue"]  # 1.0 > 0.9, 0.3 < 0.6, 0.2 > 0.1
    code, _, err = cli("--config", str(config), "export", "-m", "p", "--category", "year")
    assert code != 0 and "must be NAME=T" in err
