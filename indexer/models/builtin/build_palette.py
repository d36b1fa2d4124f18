"""Build the built-in `palette` model: Danbooru colour tags computed from pixels.

Run `python -m indexer.models.builtin.build_palette` (needs the `onnx` package) to regenerate
`palette.onnx` and `palette.tags`; a test checks the shipped files are what this builds.

The rules, per pixel of the 64x64 RGB input scaled to 0..1 (v = max, chroma = max - min,
hue direction = (R - (G+B)/2, sqrt(3)/2 (G-B)) normalised):
- colourless = sigmoid(100 (0.06 - chroma)); dark pixels (v < 0.18) count as colourless too.
- a coloured pixel belongs to the hue classes red 0, orange 30, yellow 58, green 120,
  aqua 180, blue 225, purple 275, pink 325 degrees by a von Mises weight exp(20 (cos d - 1)),
  normalised over the classes; red, orange and yellow pixels darker than v = 0.6 move to brown.
- a colourless pixel is black below v = 0.25, white above 0.8, grey between (soft edges).
Per picture, with f the fraction of pixels in a class:
- `X_theme` = sigmoid(12 (f - 0.45)): 0.5 when 45% of the picture is that colour.
- `greyscale` = sigmoid(150 (f_colourless - 0.97)).
- `monochrome` = max(greyscale, single-hue), single-hue = sigmoid(60 (R - 0.92)) times
  sigmoid(20 (f_coloured - 0.3)) times on-a-line, R the length of the mean hue direction
  of coloured pixels. on-a-line = sigmoid(300 (0.027 - d)), d the root-mean-square
  distance of the pixels from the straight line in RGB that fits them best: a picture in
  one ink, toned or in two tones (dark ink to light paper) has every pixel on one line
  (d below 0.015), while a colour photograph whose pixels mostly share a hue (an orange
  cat, a red cup, a blue wall) varies in saturation apart from lightness (d 0.04 and
  up). Pixels are weighted by sigmoid(200 (0.97 - v)), as a toned picture's highlights
  leave its line where a channel clips. The line is found by power iteration
  (ITERATIONS steps) on the pixels' weighted 3x3 covariance.
- `sepia` = single-hue times sigmoid(60 (cos(mean hue - 35 deg) - 0.94)) times
  sigmoid(15 (0.55 - mean saturation)).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

SIZE = 64
ITERATIONS = 12
START = (0.6, 0.7, 0.4)  # power iteration's first direction (near grey, on no axis)
LINE = 0.027  # on-a-line's midpoint: toned photographs 0.013 and below, colour ones 0.04 up
UNCLIPPED = 0.97  # pixels brighter than this weigh little in the line's fit
HUES = {
    "red": 0,
    "orange": 30,
    "yellow": 58,
    "green": 120,
    "aqua": 180,
    "blue": 225,
    "purple": 275,
    "pink": 325,
}
THEMES = (*HUES, "brown", "black", "white", "grey")
TAGS = ("greyscale", "monochrome", "sepia", *(f"{t}_theme" for t in THEMES))
MODEL_FILE = """\
# Built-in colour tagger; see indexer/models/builtin/build_palette.py for the rules.
name = palette
shape = nhwc
channels = rgb
normalize = true
pad = stretch
size = 64
interpret = false
"""


def _sig(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def reference(batch: NDArray[np.float32]) -> NDArray[np.float64]:
    """The rules in numpy, for tests: NHWC 0..1 RGB in, one row of scores per picture out."""
    x = batch.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v, chroma = x.max(-1), x.max(-1) - x.min(-1)
    ha, hb = r - (g + b) / 2, math.sqrt(3) / 2 * (g - b)
    norm = np.sqrt(ha * ha + hb * hb) + 1e-6
    ua, ub = ha / norm, hb / norm
    colourless = _sig(100 * (0.06 - chroma))
    coloured = (1 - colourless) * (1 - _sig(30 * (0.18 - v)))
    angles = np.radians(list(HUES.values()))
    cos = ua[..., None] * np.cos(angles) + ub[..., None] * np.sin(angles)
    weight = np.exp(20 * (cos - 1))
    member = weight / weight.sum(-1, keepdims=True) * coloured[..., None]
    dark = _sig(15 * (0.6 - v))[..., None]
    warm = member[..., :3]
    brown = (warm * dark).sum(-1)
    member = np.concatenate([warm * (1 - dark), member[..., 3:]], axis=-1)
    plain = 1 - coloured
    black, white = plain * _sig(25 * (0.25 - v)), plain * _sig(25 * (v - 0.8))
    grey = np.maximum(plain - black - white, 0)
    classes = np.concatenate([member, np.stack([brown, black, white, grey], -1)], -1)
    fractions = classes.mean(axis=(1, 2))
    themes = _sig(12 * (fractions - 0.45))
    greyscale = _sig(150 * (colourless.mean(axis=(1, 2)) - 0.97))
    sa, sb = (coloured * ua).sum((1, 2)), (coloured * ub).sum((1, 2))
    total = coloured.sum((1, 2)) + 1e-6
    length = np.sqrt(sa * sa + sb * sb) / total
    single = _sig(60 * (length - 0.92)) * _sig(20 * (coloured.mean((1, 2)) - 0.3))
    single = single * _sig(300 * (LINE - _line_distance(x)))
    monochrome = np.maximum(greyscale, single)
    toward = (sa * math.cos(math.radians(35)) + sb * math.sin(math.radians(35))) / (
        np.sqrt(sa * sa + sb * sb) + 1e-6
    )
    saturation = (coloured * chroma / (v + 1e-6)).sum((1, 2)) / total
    sepia = single * _sig(60 * (toward - 0.94)) * _sig(15 * (0.55 - saturation))
    return np.concatenate([np.stack([greyscale, monochrome, sepia], -1), themes], -1)


def _line_distance(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per picture: the RMS distance of its pixels from their best-fitting line in RGB,
    pixels weighted by how far their brightest channel is from clipping (a toned
    picture's highlights bend off its line where a channel reaches 1)."""
    pixels = x.reshape(len(x), -1, 3)
    weight = _sig(200 * (UNCLIPPED - pixels.max(-1, keepdims=True)))
    mass = weight.sum(1, keepdims=True) + 1e-6
    centred = pixels - (weight * pixels).sum(1, keepdims=True) / mass
    cov = (centred * weight).transpose(0, 2, 1) @ centred / mass
    vector = np.broadcast_to(np.array(START).reshape(1, 3, 1), (len(x), 3, 1))
    for _ in range(ITERATIONS):
        vector = cov @ vector
        vector = vector / (np.sqrt((vector * vector).sum(1, keepdims=True)) + 1e-12)
    along = (vector * (cov @ vector)).sum(1) / ((vector * vector).sum(1) + 1e-12)
    total = (weight * centred * centred).sum((1, 2))[:, None] / mass[:, 0]
    distance: NDArray[np.float64] = np.sqrt(np.maximum(total - along, 0))[:, 0]
    return distance


class _Graph:
    """Nodes and constants in the order they are made (the names count up, so the
    serialised graph is the same bytes every time)."""

    def __init__(self) -> None:
        self.nodes: list[object] = []
        self.inits: list[object] = []
        self.counter = iter(range(10_000))

    def const(self, value: object, dtype: type = np.float32) -> str:
        from onnx import numpy_helper

        name = f"c{next(self.counter)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        out = f"t{next(self.counter)}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def sig(self, x: str, scale: float, centre: float) -> str:  # sigmoid(scale * (x - centre))
        return self.op(
            "Sigmoid", self.op("Mul", self.op("Sub", x, self.const(centre)), self.const(scale))
        )

    def mean_hw(self, x: str) -> str:
        return self.op("ReduceMean", x, self.const([1, 2], np.int64), keepdims=0)

    def sum_hw(self, x: str) -> str:
        return self.op("ReduceSum", x, self.const([1, 2], np.int64), keepdims=0)

    def serialise(self, outputs: list[str]) -> bytes:
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Concat", outputs, ["scores"], axis=1))
        graph = helper.make_graph(
            self.nodes,  # type: ignore[arg-type]
            "palette",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", SIZE, SIZE, 3])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", len(TAGS)])],
            self.inits,  # type: ignore[arg-type]
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="dtindex-palette"
        )
        model.ir_version = 8
        return bytes(model.SerializeToString(deterministic=True))


def build() -> bytes:
    """The same rules as an ONNX graph (opset 18), serialised deterministically."""
    made = _Graph()
    const, op, sig, mean_hw, sum_hw = made.const, made.op, made.sig, made.mean_hw, made.sum_hw
    one = const(1.0)
    axis = const([3], np.int64)
    r = op("Slice", "input", const([0], np.int64), const([1], np.int64), axis)
    g = op("Slice", "input", const([1], np.int64), const([2], np.int64), axis)
    b = op("Slice", "input", const([2], np.int64), const([3], np.int64), axis)
    v = op("Max", r, g, b)
    chroma = op("Sub", v, op("Min", r, g, b))
    ha = op("Sub", r, op("Mul", op("Add", g, b), const(0.5)))
    hb = op("Mul", op("Sub", g, b), const(math.sqrt(3) / 2))
    norm = op("Add", op("Sqrt", op("Add", op("Mul", ha, ha), op("Mul", hb, hb))), const(1e-6))
    ua, ub = op("Div", ha, norm), op("Div", hb, norm)
    colourless = sig(chroma, -100, 0.06)
    coloured = op("Mul", op("Sub", one, colourless), op("Sub", one, sig(v, -30, 0.18)))
    angles = np.radians(list(HUES.values()))
    directions = const(np.stack([np.cos(angles), np.sin(angles)]))
    cos = op("MatMul", op("Concat", ua, ub, axis=3), directions)
    weight = op("Exp", op("Mul", op("Sub", cos, one), const(20.0)))
    share = op("Div", weight, op("ReduceSum", weight, axis, keepdims=1))
    member = op("Mul", share, coloured)
    dark = sig(v, -15, 0.6)
    warm = op("Slice", member, const([0], np.int64), const([3], np.int64), axis)
    rest = op("Slice", member, const([3], np.int64), const([8], np.int64), axis)
    brown = op("ReduceSum", op("Mul", warm, dark), axis, keepdims=1)
    plain = op("Sub", one, coloured)
    black, white = op("Mul", plain, sig(v, -25, 0.25)), op("Mul", plain, sig(v, 25, 0.8))
    grey = op("Relu", op("Sub", op("Sub", plain, black), white))
    lit = op("Mul", warm, op("Sub", one, dark))
    classes = op("Concat", lit, rest, brown, black, white, grey, axis=3)
    themes = sig(mean_hw(classes), 12, 0.45)
    greyscale = sig(mean_hw(colourless), 150, 0.97)
    sa, sb = sum_hw(op("Mul", coloured, ua)), sum_hw(op("Mul", coloured, ub))
    total = op("Add", sum_hw(coloured), const(1e-6))
    resultant = op("Sqrt", op("Add", op("Mul", sa, sa), op("Mul", sb, sb)))
    single = op("Mul", sig(op("Div", resultant, total), 60, 0.92), sig(mean_hw(coloured), 20, 0.3))
    single = op("Mul", single, sig(_line_distance_graph(made, v), -300, LINE))
    monochrome = op("Max", greyscale, single)
    c35, s35 = math.cos(math.radians(35)), math.sin(math.radians(35))
    toward = op("Add", op("Mul", sa, const(c35)), op("Mul", sb, const(s35)))
    toward = op("Div", toward, op("Add", resultant, const(1e-6)))
    sat = op("Div", op("Mul", coloured, chroma), op("Add", v, const(1e-6)))
    saturation = op("Div", sum_hw(sat), total)
    sepia = op("Mul", op("Mul", single, sig(toward, 60, 0.94)), sig(saturation, -15, 0.55))
    return made.serialise([greyscale, monochrome, sepia, themes])


def _line_distance_graph(made: _Graph, v: str) -> str:
    """`_line_distance` as graph nodes; `v` is each pixel's brightest channel. Shape
    (batch, 1)."""
    const, op = made.const, made.op
    rows, both = const([1], np.int64), const([1, 2], np.int64)
    pixels = op("Reshape", "input", const([0, -1, 3], np.int64))
    weight = made.sig(op("Reshape", v, const([0, -1, 1], np.int64)), -200, UNCLIPPED)
    mass = op("Add", op("ReduceSum", weight, rows, keepdims=1), const(1e-6))  # (batch, 1, 1)
    mean = op("Div", op("ReduceSum", op("Mul", weight, pixels), rows, keepdims=1), mass)
    centred = op("Sub", pixels, mean)
    weighted = op("Mul", centred, weight)
    cov = op("Div", op("MatMul", op("Transpose", weighted, perm=[0, 2, 1]), centred), mass)
    vector = const(np.array(START).reshape(1, 3, 1))
    tiny = const(1e-12)
    for _ in range(ITERATIONS):
        vector = op("MatMul", cov, vector)
        size = op("Sqrt", op("ReduceSum", op("Mul", vector, vector), rows, keepdims=1))
        vector = op("Div", vector, op("Add", size, tiny))
    along = op("ReduceSum", op("Mul", vector, op("MatMul", cov, vector)), rows, keepdims=0)
    length = op("Add", op("ReduceSum", op("Mul", vector, vector), rows, keepdims=0), tiny)
    along = op("Div", along, length)  # (batch, 1)
    spread = op("ReduceSum", op("Mul", weighted, centred), both, keepdims=0)  # (batch,)
    total = op("Div", op("Unsqueeze", spread, rows), op("Squeeze", mass, rows))
    return op("Sqrt", op("Relu", op("Sub", total, along)))


def main() -> None:
    folder = Path(__file__).parent
    (folder / "palette.onnx").write_bytes(build())
    (folder / "palette.tags").write_text("\n".join(TAGS) + "\n", encoding="utf-8")
    (folder / "palette.model").write_text(MODEL_FILE, encoding="utf-8")


if __name__ == "__main__":
    main()
