"""Picture decoding and preparation: pure functions of the bytes, the picture and the spec.

`decode` turns any picture Pillow opens into an oriented RGB image with transparency
composited over white; `fit` scales and pads it to the model's input as uint8 RGB; `fill`
writes that into one slot of the float32 batch array in the model's layout, in place.

Decoding and shrinking are most of a decoder's work, so the default preparation
(`resize = "bilinear"`) asks libjpeg-turbo (inside Pillow) for a JPEG already DCT-scaled
by the largest power of two that still covers what the model needs, shrinks the rest of
the way with a triangle (bilinear) filter and enlarges with bicubic. The model families'
references shrink with area averaging (WD v1.4, OpenCV's INTER_AREA), bicubic (WD v3) or
Lanczos (deeptagger), and WD's training randomised the filter; after a scaled decode the
triangle lands nearer to each of them than area averaging does (a box over 1 to 2 pixels
is too coarse), at a third of Lanczos's cost. `resize = "lanczos"` is the earlier
preparation, kept so that scores stored under it stay current. `benchmarks/decoding.py`
measures both, and how far each lands from each family's reference preparation.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.errors import DecodeError, Kind
from indexer.imaging.codecs import fast_decode, orientation
from indexer.imaging.plugins import ensure_decoder
from indexer.preparation import ModelSpec

Cover = Callable[[int, int], tuple[int, int]]


def decode(
    data: bytes, max_pixels: int, cover: Cover | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode the first frame, and give the picture's full size as displayed.

    `cover` maps that size to the width and height (as displayed) the decoded picture
    must still cover: a JPEG decodes DCT-scaled to no less (much faster than decoding
    every pixel only to average them away). The limit on pixels applies to what is
    really decoded.
    """
    if not data:
        raise DecodeError("empty file")
    ensure_decoder(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            turned = orientation(image) in (5, 6, 7, 8)  # shown a quarter turn from stored
            full = (image.height, image.width) if turned else image.size
            if cover is not None and image.format == "JPEG":
                need = cover(*full)
                image.draft("RGB", (need[1], need[0]) if turned else need)
            width, height = image.size
            if width * height > max_pixels:
                raise DecodeError(
                    f"picture is {width}x{height}, over the limit of {max_pixels} pixels",
                    Kind.LIMIT,
                    width * height,
                )
            fast = fast_decode(image, data)
            if fast is not None:
                return to_rgb(fast), full
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # a copy would double the memory
            return to_rgb(image), full
    except DecodeError:
        raise
    except UnidentifiedImageError:
        raise DecodeError("not a picture Pillow can identify") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(f"decompression bomb: {exc}") from None
    except MemoryError:
        raise DecodeError("out of memory while decoding", Kind.MEMORY) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise DecodeError(f"cannot decode: {exc}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Every mode becomes 8-bit RGB, or RGBA where there is transparency.

    16-bit and float pictures are scaled to 8 bits. Alpha stays until `fit` has scaled
    the picture down (Pillow resamples RGBA premultiplied, so compositing over white
    after scaling gives the same pixels for a fraction of the memory).
    """
    mode = image.mode
    if mode in ("RGB", "RGBX"):  # RGBX: see fastdecode; made RGB after scaling
        return image
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = 1.0 if mode == "F" and pixels.max(initial=0.0) <= 1.0 else 65535.0
        if mode == "I" and pixels.max(initial=0.0) <= 255:
            peak = 255.0
        grey = np.clip(np.rint(pixels * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    target = "RGBA" if has_alpha else "RGB"
    return image if mode == target else image.convert(target)


def over_white(image: Image.Image) -> Image.Image:
    """Composite transparency over white, as every model family's authors do; RGB out."""
    if image.mode == "RGBX":
        return image.convert("RGB")
    if image.mode != "RGBA":
        return image
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    background.alpha_composite(image)
    return background.convert("RGB")


def _resize(image: Image.Image, size: tuple[int, int], how: str) -> Image.Image:
    """Scale to `size`: `bilinear` shrinks with the triangle filter and grows with bicubic
    (as WD's authors enlarge: a third cheaper than Lanczos on a tiny icon); else Lanczos.

    Either way after a box reduction to no less than three times the target: a gap of 2
    would save 10-40 ms on a 16-megapixel picture, but on flat colours with hard edges
    (drawn artwork) it lands 1.9 grey levels from exact Lanczos; 3 lands 0.5.
    """
    if image.size == size:
        return image
    resample = Image.Resampling.LANCZOS
    if how == "bilinear":
        shrinking = size[0] <= image.width and size[1] <= image.height
        resample = Image.Resampling.BILINEAR if shrinking else Image.Resampling.BICUBIC
    gap = 3.0 if image.width >= 3 * size[0] and image.height >= 3 * size[1] else None
    return image.resize(size, resample, reducing_gap=gap)


def fitted_size(spec: ModelSpec, height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
    """The width and height a picture of `size` is scaled to, before any padding."""
    if spec.pad == "stretch":
        return width, height
    scale = min(width / size[0], height / size[1])
    if not spec.upscale:
        scale = min(scale, 1.0)
    return max(1, min(width, round(size[0] * scale))), max(1, min(height, round(size[1] * scale)))


def fit(
    image: Image.Image,
    spec: ModelSpec,
    height: int,
    width: int,
    full: tuple[int, int] | None = None,
) -> NDArray[np.uint8]:
    """Scale and pad to height x width as the spec says; returns HxWx3 uint8 RGB.

    `full`: the picture's size before a DCT-scaled decode; with `resize = "bilinear"` the
    geometry comes from it, so a scaled decode rounds no side differently. (The lanczos
    preparation keeps the decoded size's rounding, as its stored versions had it.)
    """
    geometry = full if full is not None and spec.resize == "bilinear" else image.size
    new_w, new_h = fitted_size(spec, height, width, geometry)
    inner = np.asarray(over_white(_resize(image, (new_w, new_h), spec.resize)), dtype=np.uint8)
    if spec.pad == "stretch":
        return inner
    top, left = (height - new_h) // 2, (width - new_w) // 2
    colour = spec.pad_colour()
    if colour is None:  # edge: the border pixels repeated, as DeepDanbooru trained
        pads = ((top, height - new_h - top), (left, width - new_w - left), (0, 0))
        return np.pad(inner, pads, mode="edge")
    # A colour broadcast over a whole HxWx3 array costs a millisecond (numpy's inner
    # loop is three bytes long); the same bytes repeated, then viewed, cost a fortieth.
    canvas = np.frombuffer(bytearray(bytes(colour) * (height * width)), np.uint8)
    canvas = canvas.reshape(height, width, 3)
    canvas[top : top + new_h, left : left + new_w] = inner
    return canvas


def fill(slot: NDArray[np.float32], rgb: NDArray[np.uint8], spec: ModelSpec) -> None:
    """Write one prepared picture into its batch slot: channel order, layout, scale.

    With `mean`/`std` the value is (pixel/255 - mean) / std computed in that order, as
    the families' reference code does (torchvision's ToTensor, then Normalize). A plane
    at a time: converting the whole picture through a reversed (BGR) view is three
    times slower than three plane copies, with the same values.
    """
    planes = slot if spec.shape == "nchw" else np.moveaxis(slot, -1, 0)
    order = (2, 1, 0) if spec.channels == "bgr" else (0, 1, 2)
    mean = spec.mean or (0.0, 0.0, 0.0)
    std = spec.std or (1.0, 1.0, 1.0)
    for plane, source in zip(planes, order, strict=True):
        pixels = rgb[..., source]
        if not spec.normalize:
            np.copyto(plane, pixels, casting="unsafe")
            continue
        np.divide(pixels, np.float32(255.0), out=plane, dtype=np.float32)
        if spec.mean is not None or spec.std is not None:
            plane -= np.float32(mean[source])
            plane /= np.float32(std[source])


def input_shape(spec: ModelSpec, batch: int, height: int, width: int) -> tuple[int, ...]:
    if spec.shape == "nchw":
        return (batch, 3, height, width)
    return (batch, height, width, 3)
