"""The preparation after a GPU decode, as an ONNX graph run by ONNX Runtime.

One picture in (HxWx3 uint8 RGB, as nvImageCodec decodes it: interleaved, EXIF orientation
applied), one batch slot out (float32 in the model's layout and channel order, scaled as
its spec says). The geometry comes in as inputs (`sizes`: the fitted height and width from
`prepare.fitted_size`, the one rule; `pads`: top, left, bottom, right), so one graph serves
every picture of a model.

Why a graph: ONNX Runtime, which the models already run in, then does the work on the
device the decoded picture is on (I/O binding on nvImageCodec's buffer, the output bound
to the batch), and the same graph runs on the CPU provider in the tests, against the CPU
preparation (`imaging.prepare`). The filters follow `prepare._resize`: a shrink is
Resize `linear` with `antialias` (opset 18; ONNX Runtime's kernel follows Pillow's
triangle filter), a growth `cubic` with Pillow's coefficient -0.5 and no antialias
(ONNX Runtime's CUDA kernel ignores the coefficient when antialiasing, issue
microsoft/onnxruntime#25264; growing, antialias changes nothing anyway). The CUDA
provider runs Resize-18 from 1.18 (microsoft/onnxruntime#19595). A picture that would
shrink one way and grow the other (only `pad = "stretch"`) is not the graph's: `mode_for`
says None and it is decoded on the CPU.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from indexer.preparation import ModelSpec

Mode = Literal["shrink", "grow"]
OPSET = 18
INPUT, SIZES, PADS, OUTPUT = "picture", "sizes", "pads", "slot"


def mode_for(picture: tuple[int, int], fitted: tuple[int, int]) -> Mode | None:
    """Which filter takes a picture of `picture` (height, width) to `fitted`; None when
    it would shrink one side and grow the other (the CPU path's bicubic then antialiases
    the shrinking side, which the CUDA provider does not do right)."""
    shrinks = [f <= p for p, f in zip(picture, fitted, strict=True)]
    if all(shrinks):
        return "shrink"
    if not any(shrinks):
        return "grow"
    return None


def build(spec: ModelSpec, mode: Mode) -> bytes:
    """The serialized graph for `spec`'s preparation with `mode`'s filter."""
    import onnx  # the `gpu` extra brings it (as `cuda` does)
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = _resize(mode)
    last = "fitted_"
    colour = spec.pad_colour()
    if spec.pad != "stretch":
        last = _pad(nodes, inits, last, colour)
    last = _scale(nodes, inits, last, spec)
    inits["batch_axis_"] = np.array([0], np.int64)
    nodes.append(helper.make_node("Squeeze", [last, "batch_axis_"], ["chw_"]))
    if spec.shape == "nchw":
        nodes.append(helper.make_node("Identity", ["chw_"], [OUTPUT]))
    else:
        nodes.append(helper.make_node("Transpose", ["chw_"], [OUTPUT], perm=[1, 2, 0]))
    graph = helper.make_graph(
        nodes,
        "dtindex-prepare",
        [
            helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["h", "w", 3]),
            helper.make_tensor_value_info(SIZES, TensorProto.INT64, [2]),
            helper.make_tensor_value_info(PADS, TensorProto.INT64, [4]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["d0", "d1", "d2"])],
        [numpy_helper.from_array(value, name) for name, value in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # what onnxruntime 1.17 and later all read
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def build_copy() -> bytes:
    """A graph that copies its input (batch rows) to its output: bound with I/O binding,
    ONNX Runtime's own way to move rows the CPU decoders prepared from host memory into
    a batch on the device, whichever device that is."""
    import onnx
    from onnx import TensorProto, helper

    dims = ["rows", "d1", "d2", "d3"]
    graph = helper.make_graph(
        [helper.make_node("Identity", [INPUT], [OUTPUT])],
        "dtindex-upload",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


Inits = dict[str, np.ndarray]


def _resize(mode: Mode) -> tuple[list[Any], Inits]:
    """Cast, lay out as 1x3xHxW (ONNX Runtime's cubic Resize wants four dimensions, its
    outer two unscaled), resize to `sizes` (height, width), round and clip to 0..255, as
    Pillow's uint8 resampling does."""
    from onnx import TensorProto, helper

    inits: Inits = {
        "low_": np.array(0.0, np.float32),
        "high_": np.array(255.0, np.float32),
        "batch_axis_": np.array([0], np.int64),
    }
    filters = (
        {"mode": "linear", "antialias": 1}
        if mode == "shrink"
        else {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}
    )
    nodes = [
        helper.make_node("Cast", [INPUT], ["float_"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["float_"], ["planes_"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["planes_", "batch_axis_"], ["nchw_"]),
        helper.make_node(
            "Resize",
            ["nchw_", "", "", SIZES],
            ["resized_"],
            axes=[2, 3],
            coordinate_transformation_mode="half_pixel",
            **filters,  # type: ignore[arg-type]
        ),
        helper.make_node("Round", ["resized_"], ["rounded_"]),
        helper.make_node("Clip", ["rounded_", "low_", "high_"], ["fitted_"]),
    ]
    return nodes, inits


def _pad(nodes: list[Any], inits: Inits, last: str, colour: tuple[int, int, int] | None) -> str:
    """Pad by `pads`: with the edge pixels repeated (`edge`), or with a colour (Pad takes
    one constant, so the picture is shifted by the colour, padded with 0, shifted back)."""
    from onnx import helper

    inits["pad_axes_"] = np.array([2, 3], np.int64)
    if colour is None:
        nodes.append(helper.make_node("Pad", [last, PADS, "", "pad_axes_"], ["padded_"],
                                      mode="edge"))  # fmt: skip
        return "padded_"
    inits["colour_"] = np.array(colour, np.float32).reshape(1, 3, 1, 1)
    nodes += [
        helper.make_node("Sub", [last, "colour_"], ["shifted_"]),
        helper.make_node("Pad", ["shifted_", PADS, "", "pad_axes_"], ["padded0_"]),
        helper.make_node("Add", ["padded0_", "colour_"], ["padded_"]),
    ]
    return "padded_"


def _scale(nodes: list[Any], inits: Inits, last: str, spec: ModelSpec) -> str:
    """Channel order, then value = (pixel/255 - mean) / std per channel, in that order as
    `prepare.fill` computes it (each channel keeps its own RGB mean and std)."""
    from onnx import helper

    order = [2, 1, 0] if spec.channels == "bgr" else [0, 1, 2]
    if order != [0, 1, 2]:
        inits["order_"] = np.array(order, np.int64)
        nodes.append(helper.make_node("Gather", [last, "order_"], ["ordered_"], axis=1))
        last = "ordered_"
    if not spec.normalize:
        return last
    inits["scale_"] = np.array(255.0, np.float32)
    nodes.append(helper.make_node("Div", [last, "scale_"], ["unit_"]))
    last = "unit_"
    if spec.mean is not None or spec.std is not None:
        mean = spec.mean or (0.0, 0.0, 0.0)
        std = spec.std or (1.0, 1.0, 1.0)
        inits["mean_"] = np.array([mean[c] for c in order], np.float32).reshape(1, 3, 1, 1)
        inits["std_"] = np.array([std[c] for c in order], np.float32).reshape(1, 3, 1, 1)
        nodes += [
            helper.make_node("Sub", [last, "mean_"], ["centred_"]),
            helper.make_node("Div", ["centred_", "std_"], ["normal_"]),
        ]
        last = "normal_"
    return last


def geometry(
    spec: ModelSpec, height: int, width: int, picture: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, Mode | None]:
    """The graph's `sizes` and `pads` inputs for a decoded picture of `picture` (height,
    width), and its filter (None: leave it to the CPU path)."""
    from indexer.imaging.prepare import fitted_size

    new_w, new_h = fitted_size(spec, height, width, (picture[1], picture[0]))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    pads = [top, left, height - new_h - top, width - new_w - left]
    sizes = np.array([new_h, new_w], np.int64)
    return sizes, np.array(pads, np.int64), mode_for(picture, (new_h, new_w))
