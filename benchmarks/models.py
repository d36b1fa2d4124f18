"""Models for the benchmarks.

- `balanced`: built with onnx.helper, WD-like settings (448, NHWC, BGR, white pad), a
  small convolutional net whose depth is chosen at run time so one picture's inference
  costs what the naive pipeline spends decoding and preparing one picture.
- `null`: WD-shaped (448, NHWC, BGR 0..255, white pad, 9,083 sigmoid scores, dynamic
  batch) and nearly free: one mean over the input per picture shifts a fixed score
  vector, so each picture's scores differ and exactly 150 reach the index's floor (0.01)
  and 30 the tag threshold 0.35. What a pipeline run costs beyond decoding, measured.
- `wd-vit-v2` and `caformer`: random-weight replicas of WD v1.4 ViT v2 (ViT-B/16 at 448,
  9,083 tags, batch fixed at 1, NHWC BGR 0..255 in the graph) and ML-Danbooru CAFormer
  (caformer_m36 at 448, 12,547 tags, NCHW, logits), built from timm's architectures and
  exported with torch: the same compute as the real files, meaningless tags. Needs the
  `replicas` extra (torch and timm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

WD_TAGS = 9083
ML_TAGS = 12547


def _write_tags(path: Path, count: int) -> None:
    path.write_text("".join(f"tag_{i}\n" for i in range(count)))


def balanced(folder: Path, rounds: int, name: str = "balanced") -> Path:
    """A small convolutional net on the 448 input; `rounds` 3x3 conv layers set the cost.

    Compute grows with the batch like a real tagger's (no fixed per-call overhead trick).
    """
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(
            (rng.standard_normal((32, 3, 4, 4)) * 0.01).astype(np.float32), "stem"
        ),
        numpy_helper.from_array(
            (rng.standard_normal((32, 32, 3, 3)) * 0.05).astype(np.float32), "conv"
        ),
        numpy_helper.from_array((rng.standard_normal((32, 64)) * 0.1).astype(np.float32), "head"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "stem"], ["h0"], strides=[4, 4]),
    ]
    for k in range(rounds):
        nodes.append(helper.make_node("Conv", [f"h{k}", "conv"], [f"c{k}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{k}"], [f"h{k + 1}"]))
    nodes += [
        helper.make_node("GlobalAveragePool", [f"h{rounds}"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "flat"], ["features"]),
        helper.make_node("MatMul", ["features", "head"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "balanced",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 448, 448, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 64])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    save(model, str(folder / f"{name}.onnx"))
    _write_tags(folder / f"{name}.tags", 64)
    (folder / f"{name}.model").write_text(
        f"name = {name}\nshape = nhwc\nchannels = bgr\nnormalize = false\npad = white\n"
    )
    return folder / f"{name}.model"


NULL_STORED, NULL_SHOWN = 150, 30  # scores >= 0.01 (store_threshold) and > 0.35 per picture


def null_logits(count: int = WD_TAGS) -> np.ndarray:
    """The fixed logits the picture's shift is added to; the shift is within +-0.5.

    Tags 0..29 from 0 to 3 (scores 0.38..0.97 after any shift: over 0.35); 30..149 from
    -4 to -1.5 (0.011..0.27: stored, not shown); the rest -9 (0.0002: not stored).
    The replicas add them too: a random-weight head scores every tag near 0.5, so all
    9,083 would be stored, where a real model stores about 150 a picture.
    """
    logits = np.full(count, -9.0, np.float32)
    logits[:NULL_SHOWN] = np.linspace(3.0, 0.0, NULL_SHOWN)
    logits[NULL_SHOWN:NULL_STORED] = np.linspace(-1.5, -4.0, NULL_STORED - NULL_SHOWN)
    return logits


def null(folder: Path) -> Path:
    """sigmoid(logits + mean(centre) / 255 - 0.5), the centre being the middle 16x16
    pixels: scores differ per picture, and the model reads 3 KB of each 2.4 MB input (a
    reduce over all of it would cost 0.2 ms a picture in memory traffic alone)."""
    from onnx import TensorProto, helper, numpy_helper, save

    inits = [
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
        numpy_helper.from_array(np.array([216, 216], np.int64), "starts"),
        numpy_helper.from_array(np.array([232, 232], np.int64), "ends"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "hw"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "column"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
        numpy_helper.from_array(np.array(-0.5, np.float32), "centre"),
        numpy_helper.from_array(null_logits(), "logits"),
    ]
    nodes = [
        helper.make_node("Slice", ["input", "starts", "ends", "hw"], ["centre_pixels"]),
        helper.make_node("ReduceMean", ["centre_pixels", "axes"], ["mean"], keepdims=1),
        helper.make_node("Reshape", ["mean", "column"], ["means"]),
        helper.make_node("Mul", ["means", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "centre"], ["shift"]),
        helper.make_node("Add", ["shift", "logits"], ["shifted"]),
        helper.make_node("Sigmoid", ["shifted"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "null",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 448, 448, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", WD_TAGS])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    save(model, str(folder / "null.onnx"))
    _write_tags(folder / "null.tags", WD_TAGS)
    (folder / "null.model").write_text(
        "name = null\nshape = nhwc\nchannels = bgr\nnormalize = false\npad = white\n"
    )
    return folder / "null.model"


def _export(module: object, example: object, path: Path, dynamic_batch: bool) -> None:
    import torch

    kwargs: dict[str, object] = {"input_names": ["input"], "output_names": ["output"],
                                 "opset_version": 18}  # fmt: skip
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    try:
        torch.onnx.export(module, (example,), str(path), dynamo=False, **kwargs)
    except TypeError:  # a torch without the choice
        torch.onnx.export(module, (example,), str(path), **kwargs)


def _as_trained(logits: Any, count: int) -> Any:
    """Random-weight logits, damped, over a real model's spread (`null_logits`)."""
    import torch

    return logits * 0.1 + torch.from_numpy(null_logits(count))


def wd_vit_v2(folder: Path) -> Path:
    import timm
    import torch

    class NhwcBgr(torch.nn.Module):
        """The published v2 graphs take NHWC BGR 0..255 and end in a sigmoid."""

        def __init__(self) -> None:
            super().__init__()
            self.net = timm.create_model("vit_base_patch16_224", img_size=448,
                                         num_classes=WD_TAGS, pretrained=False)  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.flip(-1).permute(0, 3, 1, 2) / 127.5 - 1.0
            return torch.sigmoid(_as_trained(self.net(x), WD_TAGS))

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wd-vit-v2.onnx"
    if not path.exists():
        with torch.no_grad():
            _export(NhwcBgr().eval(), torch.zeros(1, 448, 448, 3), path, dynamic_batch=False)
    _write_tags(folder / "wd-vit-v2.tags", WD_TAGS)
    (folder / "wd-vit-v2.model").write_text(
        "name = wd-vit-v2\nshape = nhwc\nchannels = bgr\nnormalize = false\npad = white\n"
    )
    return folder / "wd-vit-v2.model"


def caformer(folder: Path) -> Path:
    import timm
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "caformer.onnx"
    if not path.exists():

        class Logits(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = timm.create_model("caformer_m36", num_classes=ML_TAGS, pretrained=False)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return _as_trained(self.net(x), ML_TAGS)

        net = Logits().eval()
        with torch.no_grad():
            _export(net, torch.zeros(1, 3, 448, 448), path, dynamic_batch=True)
    _write_tags(folder / "caformer.tags", ML_TAGS)
    (folder / "caformer.model").write_text(
        "name = caformer\nshape = nchw\nchannels = rgb\nnormalize = true\npad = stretch\n"
        "size = 448\ninterpret = sigmoid\n"
    )
    return folder / "caformer.model"
