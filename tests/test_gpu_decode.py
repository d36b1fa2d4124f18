"""The GPU decode's parts that run without a GPU (issue 26): the preparation graph on
ONNX Runtime's CPU provider against the CPU preparation, for every family's settings;
which files the GPU path takes and which it refuses to the CPU decoders; the rule for
`decode = auto | cpu | gpu`, end to end through `dtindex tag` and `scan`.

The graph resizes the fully decoded picture with Resize's antialiased triangle; the CPU
path decodes JPEGs DCT-scaled and box-reduces first (`imaging.prepare`), so the two differ
at sharp edges. The bound is a mean of 2 grey levels (of 255), per channel, after undoing
each family's scaling: the README's families table accepts any filter within a grey level
or so of the references, and the CPU path's own two preparations differ by up to 1.9 on
drawn artwork; the solid and gradient areas that make most of a picture agree far closer.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import picture, write_model
from PIL import Image, ImageDraw

from indexer.errors import ModelError
from indexer.imaging.gpu.choice import for_run, gpu_decodes, unavailable
from indexer.imaging.gpu.decode import split
from indexer.imaging.gpu.graph import mode_for
from indexer.imaging.gpu.prepare import Buffer, Preparer
from indexer.imaging.messages import Target
from indexer.imaging.prepare import decode, fill, input_shape
from indexer.imaging.tasks import prepare_targets
from indexer.preparation import ModelSpec

CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5,) * 3, (0.5,) * 3)
# Each family's settings (see test_families.py and the README's model table).
FAMILIES = {
    "wd": ModelSpec(shape="nhwc", channels="bgr", pad="white"),
    "deepdanbooru": ModelSpec(shape="nhwc", normalize=True, pad="edge"),
    "ml-danbooru": ModelSpec(shape="nchw", normalize=True, pad="stretch"),
    "joytag": ModelSpec(shape="nchw", pad="white", mean=CLIP[0], std=CLIP[1], normalize=True),
    "camie": ModelSpec(
        shape="nchw", pad="124,116,104", normalize=True, mean=IMAGENET[0], std=IMAGENET[1]
    ),
    "cl_tagger": ModelSpec(shape="nchw", channels="bgr", normalize=True, mean=HALF[0], std=HALF[1]),
    "pixai": ModelSpec(shape="nchw", pad="stretch", normalize=True, mean=HALF[0], std=HALF[1]),
}
SIDE = 96
MAX_PIXELS = 100_000_000


def artwork(width: int, height: int, fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """Drawn-looking content: a gradient sky, flat shapes with hard edges, a thin line."""
    y, x = np.mgrid[0:height, 0:width]
    sky = np.stack([60 + 150 * x // width, 90 + 120 * y // height, 200 - 80 * x // width], -1)
    image = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 4, width // 2, height * 3 // 4), fill=(240, 200, 170))
    draw.rectangle((width * 3 // 5, height // 3, width * 9 // 10, height), fill=(40, 40, 90))
    draw.line((0, height - 1, width - 1, 0), fill=(250, 250, 250), width=max(2, width // 100))
    out = io.BytesIO()
    image.convert(mode).save(out, fmt, quality=95)
    return out.getvalue()


def cpu_tensor(data: bytes, target: Target) -> np.ndarray:
    """The CPU path's slot: DCT-scaled decode, fit, fill."""
    slot = np.empty(input_shape(target.spec, 1, target.height, target.width)[1:], np.float32)
    [rgb], _ = prepare_targets(data, [target], MAX_PIXELS)
    fill(slot, rgb, target.spec)
    return slot


def graph_tensor(pixels: np.ndarray, target: Target) -> np.ndarray | None:
    """The GPU path's preparation, run by the CPU provider on a fully decoded picture."""
    slot = np.full(input_shape(target.spec, 1, target.height, target.width)[1:], np.nan,
                   np.float32)  # fmt: skip
    done = Preparer(target, ["CPUExecutionProvider"]).fill(
        Buffer.of_array(np.ascontiguousarray(pixels)), Buffer.of_array(slot)
    )
    return slot if done else None


def full_decode(data: bytes) -> np.ndarray:
    image, _ = decode(data, MAX_PIXELS)  # no `cover`: every pixel, oriented, as nvImageCodec
    return np.asarray(image.convert("RGB"))


def grey_levels(tensor: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """A slot back in 0..255 RGB values, channels last, whatever the family's scaling."""
    values = tensor if spec.shape == "nhwc" else np.moveaxis(tensor, 0, -1)
    if spec.channels == "bgr":
        values = values[..., ::-1]
    if spec.normalize:
        mean = np.asarray(spec.mean or (0.0, 0.0, 0.0), np.float32)
        std = np.asarray(spec.std or (1.0, 1.0, 1.0), np.float32)
        values = (values * std + mean) * 255.0
    return values


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("size", [(640, 400), (300, 520), (60, 40)], ids=str)
def test_the_graph_prepares_as_the_cpu_path_does(family: str, size: tuple[int, int]) -> None:
    spec = FAMILIES[family]
    target = Target(spec, SIDE, SIDE)
    data = artwork(*size)
    expected = grey_levels(cpu_tensor(data, target), spec)
    got = graph_tensor(full_decode(data), target)
    assert got is not None and np.isfinite(got).all()
    difference = np.abs(grey_levels(got, spec) - expected)
    assert difference.reshape(-1, 3).mean(axis=0).max() < 2.0, difference.mean()
    assert np.median(difference) < 1.0  # most pixels agree to the grey level


def test_padding_and_channels_land_where_the_cpu_path_puts_them() -> None:
    """A solid picture: the bands of padding (a colour, or the edge repeated) and the
    picture itself come out exactly, in each layout and channel order."""
    solid = np.zeros((40, 80, 3), np.uint8) + np.array([200, 40, 90], np.uint8)
    for family in ("wd", "camie", "deepdanbooru"):
        spec = FAMILIES[family]
        target = Target(spec, 16, 16)
        got = graph_tensor(solid, target)
        rows = grey_levels(got, spec)  # type: ignore[arg-type]
        out = io.BytesIO()
        Image.fromarray(solid).save(out, "PNG")
        want = grey_levels(cpu_tensor(out.getvalue(), target), spec)
        assert np.allclose(rows, want, atol=0.01), family


def test_a_picture_that_would_shrink_one_way_and_grow_the_other_is_left_to_the_cpu() -> None:
    assert mode_for((400, 100), (200, 200)) is None
    assert (mode_for((400, 300), (200, 150)), mode_for((40, 30), (200, 150))) == (
        "shrink",
        "grow",
    )
    target = Target(FAMILIES["pixai"], SIDE, SIDE)  # stretch: 400x30 to 96x96
    assert graph_tensor(np.zeros((30, 400, 3), np.uint8), target) is None


def pillow_decode(refuse: Sequence[int] = ()) -> Any:
    """A batch decoder for the tests' seam: Pillow, every pixel, oriented; None for the
    positions of each batch in `refuse`, as nvImageCodec reports one it cannot decode."""

    def batch(datas: list[bytes]) -> list[np.ndarray | None]:
        return [None if i in refuse else full_decode(d) for i, d in enumerate(datas)]

    return batch


def host_buffer(image: np.ndarray) -> Buffer:
    return Buffer.of_array(image)


def cmyk_jpeg() -> bytes:
    return artwork(64, 48, "JPEG", "CMYK")


def test_split_takes_jpegs_and_refuses_the_rest_to_the_cpu() -> None:
    datas = [
        artwork(64, 48),  # 0: taken
        artwork(64, 48, "PNG"),  # 1: not a JPEG
        cmyk_jpeg(),  # 2: CMYK: Pillow's colours are the reference
        artwork(64, 48)[:40],  # 3: a header Pillow cannot read
        artwork(80, 80),  # 4: over the pixel limit below
        artwork(32, 48),  # 5: the decoder refuses it (None)
        artwork(48, 32, mode="L"),  # 6: grey: taken
    ]
    # The batch holds 0, 5 and 6: its second is refused.
    result = split(datas, pillow_decode(refuse=[1]), host_buffer, max_pixels=64 * 64)
    assert result.refused == [1, 2, 3, 4, 5]
    assert sorted(result.decoded) == [0, 6]
    assert result.decoded[6][0].shape == (32, 48, 3)


def test_a_decoder_that_fails_the_whole_batch_refuses_it_all() -> None:
    def broken(datas: list[bytes]) -> list[Any]:
        raise RuntimeError("out of device memory")

    result = split([artwork(64, 48), artwork(32, 32)], broken, host_buffer, MAX_PIXELS)
    assert (result.refused, result.decoded) == ([0, 1], {})


def test_a_picture_decoded_in_another_shape_is_refused() -> None:
    """A decoder that did not turn a picture as its EXIF orientation says (or gave four
    channels) hands it back to the CPU path rather than preparing it wrong."""
    image = Image.open(io.BytesIO(artwork(64, 48)))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown a quarter turn from stored: 48 wide, 64 high
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())

    def unturned(datas: list[bytes]) -> list[np.ndarray]:
        return [np.asarray(Image.open(io.BytesIO(d)).convert("RGB")) for d in datas]

    assert split([out.getvalue()], unturned, host_buffer, MAX_PIXELS).refused == [0]
    taken = split([out.getvalue()], pillow_decode(), host_buffer, MAX_PIXELS)
    assert taken.decoded[0][0].shape == (64, 48, 3)


def test_decoded_pictures_prepare_as_on_the_cpu_through_the_same_buffers() -> None:
    """The split and the preparation together: what the GPU path would hand the model
    for each taken picture matches the CPU path's."""
    datas = [artwork(400, 300), artwork(200, 260), artwork(50, 50, "PNG")]
    target = Target(FAMILIES["wd"], SIDE, SIDE)
    result = split(datas, pillow_decode(), host_buffer, MAX_PIXELS)
    assert result.refused == [2]
    preparer = Preparer(target, ["CPUExecutionProvider"])
    batch = np.zeros((len(datas), SIDE, SIDE, 3), np.float32)
    for position, (buffer, _) in result.decoded.items():
        assert preparer.fill(buffer, Buffer.of_array(batch[position]))
    for position in result.decoded:
        difference = np.abs(batch[position] - cpu_tensor(datas[position], target))
        assert difference.mean() < 2.0


def test_the_rule_for_where_jpegs_are_decoded() -> None:
    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cpu_only = ["CPUExecutionProvider"]

    def installed() -> bool:
        return True

    def missing() -> bool:
        return False

    assert not gpu_decodes("cpu", False, cuda, installed)
    assert not gpu_decodes("auto", False, cpu_only, missing)
    assert gpu_decodes("auto", False, cuda, installed)
    assert gpu_decodes("gpu", False, cuda, installed)
    assert not gpu_decodes("auto", True, cuda, installed)  # --cpu
    assert unavailable(False, cuda, installed) is None
    for cpu, providers, check, why in [
        (True, cuda, installed, "--cpu"),
        (False, cpu_only, installed, "CUDA provider"),
        (False, cuda, missing, "nvidia-nvimgcodec-cu12"),
    ]:
        with pytest.raises(ModelError, match="decode = gpu") as raised:
            gpu_decodes("gpu", cpu, providers, check)
        assert why in str(raised.value)
    # The lane feeds one model: a run of several decodes on the CPU.
    assert for_run(["auto"]) and for_run(["gpu"]) and not for_run(["cpu"])
    assert not for_run(["auto", "auto"]) and not for_run(["gpu", "cpu"]) and not for_run([])


def test_tag_and_scan_decode_auto_as_cpu_and_gpu_stops_naming_why(cli, tmp_path: Path) -> None:
    """No CUDA provider here: `auto` decodes on the CPU with the same scores as `cpu`;
    `gpu`, from the command line or the config, stops before any picture, naming it."""
    model = write_model(tmp_path / "m", "means", mean=True, settings="normalize = true\n")
    gallery = tmp_path / "gallery"
    files = [picture(gallery / f"{i}.jpg", (40 * i, 200, 90), (64, 48)) for i in range(3)]
    paths = [str(f) for f in files]
    outputs = {}
    for choice in ("auto", "cpu"):
        code, out, err = cli("tag", "--decode", choice, "-t", "0", str(model), *paths)
        assert code == 0, err
        outputs[choice] = out
    assert outputs["auto"] == outputs["cpu"] and outputs["cpu"].count(b"\n") == 9  # 3 tags each
    code, out, err = cli("tag", "--decode", "gpu", str(model), *paths)
    assert code == 2 and out == b""
    assert "decode = gpu" in err and "CUDA provider" in err, err
    config = tmp_path / "deeptagger.toml"
    config.write_text(f'decode = "gpu"\n[models.means]\nmodel = "{model}"\n')
    code, _, err = cli("--config", str(config), "scan", "-m", "means", str(gallery))
    assert code == 1 and "decode = gpu" in err, err  # scan's exit status for an error
    code, _, err = cli("--config", str(config), "scan", "--decode", "auto", "-m", "means",
                       str(gallery))  # fmt: skip
    assert code == 0, err
    config.write_text('decode = "fast"\n')
    code, _, err = cli("--config", str(config), "scan", str(gallery))
    assert code == 1 and "decode = 'fast' is not one of auto, cpu, gpu" in err, err
