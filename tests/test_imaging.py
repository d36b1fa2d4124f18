"""Decoding every kind of picture to RGB, and the pure preparation functions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from indexer.errors import DecodeError
from indexer.imaging.messages import Target
from indexer.imaging.prepare import decode, fill, fit, fitted_size
from indexer.imaging.tasks import prepare_targets
from indexer.preparation import ModelSpec

LIMIT = 10**8


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded, size = decode(encode(image, "JPEG", exif=exif, quality=95), LIMIT)
    assert decoded.size == (20, 40) and size == (20, 40)
    top, bottom = decoded.getpixel((10, 5)), decoded.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the red half is now on top
    assert bottom[2] > 200


def test_a_rotated_jpeg_decodes_scaled_by_what_it_needs_as_displayed() -> None:
    """A 1600x800 photograph shown upright (EXIF 6) as 800x1600 fits a 448 model as
    224x448: the decode must cover that turned back, 448x224 as stored (scaled by 2),
    neither more (a needless full decode) nor less (a picture scaled up again)."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 255, (8, 16, 3)).astype(np.uint8)
    photo = Image.fromarray(coarse).resize((1600, 800), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(photo, "JPEG", exif=exif, quality=95)
    spec = ModelSpec(pad="white")
    decoded, full = decode(data, LIMIT, lambda w, h: fitted_size(spec, 448, 448, (w, h)))
    assert full == (800, 1600) and decoded.size == (400, 800)
    [got], _ = prepare_targets(data, [Target(spec, 448, 448)], LIMIT)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    exact = np.asarray(upright.resize((224, 448), Image.Resampling.BILINEAR), float)
    assert np.abs(got[:, 112:336].astype(float) - exact).mean() < 1.0
    assert np.all(got[:, :112] == 255) and np.all(got[:, 336:] == 255)


def prepared(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Decode and fit at the picture's own size (no scaling), as a model would see it."""
    return fit(decode(data, LIMIT)[0], ModelSpec(pad="stretch"), size[1], size[0])


def test_transparency_is_composited_over_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    pixels = prepared(encode(rgba, "PNG"), (4, 4))
    assert pixels[1, 1].tolist() == [255, 255, 255] and pixels[0, 0].tolist() == [0, 0, 255]
    la = Image.new("LA", (2, 2), (0, 128))
    assert prepared(encode(la, "PNG"), (2, 2))[0, 0].tolist() == [127, 127, 127]


def test_compositing_after_scaling_matches_compositing_first() -> None:
    rng = np.random.default_rng(2)
    rgba = Image.fromarray(rng.integers(0, 255, (300, 400, 4), dtype=np.uint8), "RGBA")
    first = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    first.alpha_composite(rgba)
    spec = ModelSpec(pad="white")
    expected = fit(first.convert("RGB"), spec, 64, 64).astype(float)
    assert np.abs(fit(rgba, spec, 64, 64).astype(float) - expected).mean() < 1.0


def test_palette_with_transparency() -> None:
    image = Image.new("P", (2, 2), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    assert prepared(encode(image, "GIF", transparency=1), (2, 2))[0, 0].tolist() == [255, 255, 255]


def test_first_frame_of_animation() -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode(data, LIMIT)[0].getpixel((0, 0)) == (255, 0, 0)


def test_cmyk_and_sixteen_bit() -> None:
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    assert decode(encode(cmyk, "JPEG"), LIMIT)[0].getpixel((0, 0))[0] > 200
    deep = Image.fromarray(np.full((2, 2), 65535 // 2, np.uint16))
    decoded, _ = decode(encode(deep, "PNG"), LIMIT)
    assert abs(decoded.getpixel((0, 0))[0] - 127) <= 1
    assert decode(encode(Image.new("L", (2, 2), 9), "TIFF"), LIMIT)[0].getpixel((0, 0)) == (9, 9, 9)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty file"), (b"GIF89a", "not a picture"), (b"hello", "not a picture")],
)
def test_broken_input_raises_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(data, LIMIT)


def test_pixel_limit() -> None:
    with pytest.raises(DecodeError, match="over the limit"):
        decode(encode(Image.new("RGB", (100, 100)), "PNG"), 5000)


def _blocks_jpeg(side: int) -> bytes:
    """1600x1200 flat blocks with hard edges, like drawn artwork: the worst case for box
    filters and for DCT-scaled decoding."""
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 255, (1200 // side, 1600 // side, 3))
    blocks = np.kron(colours, np.ones((side, side, 1))).astype(np.uint8)
    return encode(Image.fromarray(blocks), "JPEG", quality=90)


def test_the_lanczos_preparation_stays_within_a_grey_level_of_exact_lanczos() -> None:
    data = _blocks_jpeg(40)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    exact = np.asarray(full.resize((64, 48), Image.Resampling.LANCZOS), float)
    spec = ModelSpec(pad="white", resize="lanczos")
    reduced = fit(decode(data, LIMIT)[0], spec, 64, 64).astype(float)
    [drafted], size = prepare_targets(data, [Target(spec, 64, 64)], LIMIT)
    drafted_image, _ = decode(data, LIMIT, lambda w, h: (128, 128))
    assert drafted_image.size[0] < 1600 and size == (1600, 1200)
    for prepared in (reduced, drafted.astype(float)):
        assert np.abs(prepared[8:56] - exact).mean() < 1.0
        assert np.all(prepared[:8] == 255)


@pytest.mark.parametrize("side", [40, 100, 200])
def test_the_bilinear_preparation_lands_as_near_each_exact_filter_as_they_land_to_each_other(
    side: int,
) -> None:
    """A DCT-scaled decode shrunk by the triangle filter, against the triangle filter
    of every decoded pixel (within a grey level: what the scaled decode costs), and
    against area averaging and Lanczos of every pixel (the references' filters): not
    much farther from either than they are from each other, or a grey level."""
    data = _blocks_jpeg(side)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    area = np.asarray(full.resize((448, 336), Image.Resampling.BOX), float)
    lanczos = np.asarray(full.resize((448, 336), Image.Resampling.LANCZOS), float)
    bilinear = np.asarray(full.resize((448, 336), Image.Resampling.BILINEAR), float)
    [prepared], _ = prepare_targets(data, [Target(ModelSpec(pad="white"), 448, 448)], LIMIT)
    drafted_image, _ = decode(data, LIMIT, lambda w, h: (448, 336))
    assert drafted_image.size == (800, 600)  # DCT-scaled by half: still covers 448x336
    inner = prepared[56:392].astype(float)
    assert np.abs(inner - bilinear).mean() < 1.0
    spread = np.abs(area - lanczos).mean()
    for exact in (area, lanczos):
        assert np.abs(inner - exact).mean() < 1.25 * max(spread, 1.0)
    assert np.all(prepared[:56] == 255)


def test_fit_geometry() -> None:
    wide = Image.new("RGB", (8, 4), (10, 20, 30))
    white = fit(wide, ModelSpec(pad="white"), 8, 8)
    assert white.shape == (8, 8, 3)
    assert (
        (white[:2] == 255).all() and (white[6:] == 255).all() and (white[2:6] == (10, 20, 30)).all()
    )
    assert (fit(wide, ModelSpec(pad="edge"), 8, 8) == (10, 20, 30)).all()
    assert (fit(wide, ModelSpec(pad="stretch"), 6, 10) == (10, 20, 30)).all()
    assert fit(wide, ModelSpec(pad="stretch"), 6, 10).shape == (6, 10, 3)
    assert fit(Image.new("RGB", (2, 2), 0), ModelSpec(upscale=False), 8, 8)[3, 3].tolist() == [
        0,
        0,
        0,
    ]


def test_fill_writes_layout_order_and_scale_in_place() -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 51
    batch = np.zeros((1, 3, 2, 2), np.float32)
    fill(batch[0], rgb, ModelSpec(shape="nchw", channels="bgr", normalize=True))
    assert batch[0, 0, 0, 0] == pytest.approx(0.2) and batch[0, 2, 0, 0] == 1.0
    flat = np.zeros((1, 2, 2, 3), np.float32)
    fill(flat[0], rgb, ModelSpec())
    assert flat[0, 1, 1].tolist() == [255.0, 0.0, 51.0]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA"])
@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_fast_decoders_give_the_same_pixels_as_pillow(fmt: str, mode: str) -> None:
    from indexer.imaging.codecs import fast_decode

    pytest.importorskip("imagecodecs")
    rng = np.random.default_rng(4)
    bands = len(mode)
    array = rng.integers(0, 255, (37, 53, bands), dtype=np.uint8)
    image = Image.fromarray(array[..., 0] if bands == 1 else array, mode)
    data = encode(image, fmt, **({"quality": 90} if fmt == "WEBP" else {}))
    header = Image.open(io.BytesIO(data))
    fast = fast_decode(header, data)
    if (fmt, header.mode) not in {("PNG", "L"), ("PNG", "RGB"), ("PNG", "RGBA"),
                                  ("WEBP", "RGB"), ("WEBP", "RGBA")}:  # fmt: skip
        assert fast is None  # left to Pillow
        return
    assert fast is not None
    reference = Image.open(io.BytesIO(data))
    reference.load()
    difference = np.abs(np.asarray(fast, float) - np.asarray(reference.convert(fast.mode), float))
    assert difference.mean() < 1.0  # lossless PNG: 0; WebP: libwebp versions may round apart
    if fmt == "PNG":
        assert difference.max() == 0


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
@pytest.mark.parametrize("pad", ["white", "edge", "stretch"])
def test_fast_path_prepares_the_same_tensor_as_pillow(fmt: str, pad: str) -> None:
    """Through decode and fit: the fast path's RGBX and RGBA layouts end as plain RGB."""
    pytest.importorskip("imagecodecs")
    rng = np.random.default_rng(5)
    smooth = np.kron(rng.integers(0, 255, (12, 9, 4)), np.ones((20, 20, 1))).astype(np.uint8)
    for array in (smooth[..., :3], smooth):
        data = encode(Image.fromarray(array), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        fast = decode(data, LIMIT)[0]
        alpha = array.shape[2] == 4
        assert fast.mode == ("RGBA" if alpha else "RGBX" if fmt == "WEBP" else "RGB")
        reference = Image.open(io.BytesIO(data))
        reference.load()
        spec = ModelSpec(pad=pad)
        got = fit(fast, spec, 48, 48)
        expected = fit(reference.convert("RGBA" if alpha else "RGB"), spec, 48, 48)
        assert got.shape == (48, 48, 3) and got.dtype == np.uint8
        assert np.array_equal(got, expected)


@pytest.mark.parametrize(("resize", "exact"), [("lanczos", "LANCZOS"), ("bilinear", "BILINEAR")])
def test_big_pictures_reduced_first_stay_within_a_grey_level_of_the_exact_filter(
    resize: str, exact: str
) -> None:
    rng = np.random.default_rng(6)
    coarse = rng.integers(0, 255, (24, 32, 3)).astype(np.uint8)
    photo = Image.fromarray(coarse).resize((1600, 1200), Image.Resampling.BICUBIC)
    photo = Image.fromarray(
        np.clip(np.asarray(photo, int) + rng.integers(-20, 20, (1200, 1600, 3)), 0, 255).astype(
            np.uint8
        )
    )
    data = encode(photo, "PNG")
    spec = ModelSpec(pad="white", resize=resize)  # type: ignore[arg-type]
    got = fit(decode(data, LIMIT)[0], spec, 64, 64).astype(float)
    exact_inner = np.asarray(photo.resize((64, 48), getattr(Image.Resampling, exact)), float)
    assert np.abs(got[8:56] - exact_inner).mean() < 1.0
    assert np.all(got[:8] == 255) and np.all(got[56:] == 255)
