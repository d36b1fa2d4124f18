"""Picture decoding and preparation: pure functions of the bytes, the picture and the spec.

`decode` turns any picture Pillow opens into an oriented RGB image with transparency
composited over white; `fit` scales and pads it to the model's input as uint8 RGB; `fill`
writes that into one slot of the float32 batch array in the model's layout, in place.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.errors import DecodeError, Kind
from indexer.imaging.codecs import fast_decode, orientation
from indexer.imaging.plugins import ensure_decoder
from indexer.preparation import ModelSpec


def decode(
    data: bytes, max_pixels: int, draft_to: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode the first frame, and give the picture's full size as displayed.

    `draft_to` lets JPEGs decode DCT-scaled to no less than that size (much faster for
    big photographs); the limit on pixels applies to what is really decoded.
    """
    if not data:
        raise DecodeError("empty file")
    ensure_decoder(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.seek(0)
            full = image.size
            if orientation(image) in (5, 6, 7, 8):
                full = (full[1], full[0])
            if draft_to and image.format == "JPEG":
                image.draft("RGB", (draft_to, draft_to))
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


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Lanczos, after a box reduction to no less than three times the target.

    A gap of 2 would save 10-40 ms on a 16-megapixel picture, but on flat colours with
    hard edges (drawn artwork) it lands 1.9 grey levels from exact Lanczos; 3 lands 0.5.
    """
    if image.size == size:
        return image
    gap = 3.0 if image.width >= 3 * size[0] and image.height >= 3 * size[1] else None
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=gap)


def fit(image: Image.Image, spec: ModelSpec, height: int, width: int) -> NDArray[np.uint8]:
    """Scale and pad to height x width as the spec says; returns HxWx3 uint8 RGB."""
    if spec.pad == "stretch":
        return np.asarray(over_white(_resize(image, (width, height))), dtype=np.uint8)
    scale = min(width / image.width, height / image.height)
    if not spec.upscale:
        scale = min(scale, 1.0)
    new_w = max(1, min(width, round(image.width * scale)))
    new_h = max(1, min(height, round(image.height * scale)))
    inner = np.asarray(over_white(_resize(image, (new_w, new_h))), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    colour = spec.pad_colour()
    if colour is None:  # edge: the border pixels repeated, as DeepDanbooru trained
        pads = ((top, height - new_h - top), (left, width - new_w - left), (0, 0))
        return np.pad(inner, pads, mode="edge")
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = colour
    canvas[top : top + new_h, left : left + new_w] = inner
    return canvas


def fill(slot: NDArray[np.float32], rgb: NDArray[np.uint8], spec: ModelSpec) -> None:
    """Write one prepared picture into its batch slot: channel order, layout, scale.

    With `mean`/`std` the value is (pixel/255 - mean) / std computed in that order, as
    the families' reference code does (torchvision's ToTensor, then Normalize).
    """
    pixels = rgb[..., ::-1] if spec.channels == "bgr" else rgb
    if spec.shape == "nchw":
        pixels = pixels.transpose(2, 0, 1)
    if not spec.normalize:
        slot[...] = pixels
        return
    np.divide(pixels, np.float32(255.0), out=slot, dtype=np.float32)
    if spec.mean is None and spec.std is None:
        return
    per_channel = (3, 1, 1) if spec.shape == "nchw" else (3,)
    order = slice(None, None, -1) if spec.channels == "bgr" else slice(None)
    mean = np.asarray(spec.mean or (0.0, 0.0, 0.0), np.float32)[order].reshape(per_channel)
    std = np.asarray(spec.std or (1.0, 1.0, 1.0), np.float32)[order].reshape(per_channel)
    slot -= mean
    slot /= std


def input_shape(spec: ModelSpec, batch: int, height: int, width: int) -> tuple[int, ...]:
    if spec.shape == "nchw":
        return (batch, 3, height, width)
    return (batch, height, width, 3)
