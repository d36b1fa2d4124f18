"""Decoding and preparation, per model family and kind of picture: CPU and faithfulness.

    python -m benchmarks.decoding [--pictures 120] [--out benchmarks/results]

For each family's settings (input size, geometry, channels) and each kind of picture
(illustration-size and web-size JPEGs, big photographs in JPEG, PNG and WebP, tiny icons),
one process prepares every picture into the model's float32 input as a decoder does
(`prepare_targets`, then `fill`), once with the earlier preparation (`resize =
"lanczos"`) and once with the bilinear one, and prints:

- CPU milliseconds a picture (the best of three passes: the machine's other work only
  ever adds time);
- the mean difference, in grey levels over the whole prepared input, from each reference
  preparation, computed here with plain Pillow from every decoded pixel: deeptagger's
  (Lanczos), and the family authors' own where `../shared/MODELS.md` names their filter
  (WD v1.4: pad to a white square at full size, then area averaging, OpenCV's
  INTER_AREA; WD v3: the same, with bicubic).

The decoder's per-file work that is not preparation (reading, hashing, pipes) is left to
`benchmarks.pipeline`, which measures the decoder processes' whole CPU.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from benchmarks import corpus, illustrations
from indexer.imaging.messages import Target
from indexer.imaging.prepare import fill, input_shape
from indexer.imaging.tasks import prepare_targets
from indexer.preparation import ModelSpec

LIMIT = 200_000_000
R = Image.Resampling
Reference = Callable[[Image.Image], NDArray[np.uint8]]


@dataclass(frozen=True)
class Family:
    name: str
    spec: ModelSpec
    side: int
    references: dict[str, Reference]


def _fit_inside(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = min(side / size[0], side / size[1])
    return max(1, min(side, round(size[0] * scale))), max(1, min(side, round(size[1] * scale)))


def lanczos_fit(side: int, pad: str) -> Reference:
    """deeptagger's: Lanczos into the input keeping the aspect, then pad (white or edge)."""

    def prepare(image: Image.Image) -> NDArray[np.uint8]:
        if pad == "stretch":
            return np.asarray(image.resize((side, side), R.LANCZOS))
        inner = np.asarray(image.resize(_fit_inside(image.size, side), R.LANCZOS))
        top, left = (side - inner.shape[0]) // 2, (side - inner.shape[1]) // 2
        pads = ((top, side - inner.shape[0] - top), (left, side - inner.shape[1] - left), (0, 0))
        if pad == "edge":
            return np.pad(inner, pads, mode="edge")
        return np.pad(inner, pads, constant_values=255)

    return prepare


def square_then(side: int, resample: R) -> Reference:
    """WD's authors': pad to a white square at full size, centred, then resize."""

    def prepare(image: Image.Image) -> NDArray[np.uint8]:
        longest = max(image.size)
        square = Image.new("RGB", (longest, longest), (255, 255, 255))
        square.paste(image, ((longest - image.width) // 2, (longest - image.height) // 2))
        return np.asarray(square.resize((side, side), resample))

    return prepare


FAMILIES = (
    Family(
        "WD v1.4 (448, BGR, white)",
        ModelSpec(channels="bgr", pad="white"),
        448,
        {"deeptagger": lanczos_fit(448, "white"), "authors' (area)": square_then(448, R.BOX)},
    ),
    Family(
        "WD v3 (448, BGR, white)",
        ModelSpec(channels="bgr", pad="white"),
        448,
        {"authors' (bicubic)": square_then(448, R.BICUBIC)},
    ),
    Family(
        "DeepDanbooru (512, edge, /255)",
        ModelSpec(normalize=True, pad="edge"),
        512,
        {"deeptagger": lanczos_fit(512, "edge")},
    ),
    Family(
        "ML-Danbooru CAFormer (448, stretch, NCHW)",
        ModelSpec(shape="nchw", normalize=True, pad="stretch", interpret="sigmoid"),
        448,
        {"deeptagger": lanczos_fit(448, "stretch")},
    ),
    Family(
        "ML-Danbooru TResNet-D (640, stretch, NCHW)",
        ModelSpec(shape="nchw", normalize=True, pad="stretch", interpret="sigmoid", size=640),
        640,
        {"deeptagger": lanczos_fit(640, "stretch")},
    ),
)


def picture_sets(work: Path, count: int) -> dict[str, list[bytes]]:
    def read(paths: list[Path]) -> list[bytes]:
        return [path.read_bytes() for path in paths]

    ill = illustrations.build_illustrations(work / "illustrations", count)
    web = illustrations.build_illustrations(work / "web", count, "web")
    big = [p for p in corpus.build(work / "corpus", 96) if "8mp" in p.name or "16mp" in p.name]
    _, tiny = illustrations.build_tiny(work / "tiny-2000", 2000)
    return {
        "illustrations, 1-3 MP JPEG": read(ill),
        "web-size, 0.3-1 MP JPEG": read(web),
        "photographs, 8-16 MP JPEG/PNG/WebP": read(big[: max(6, count // 8)]),
        "tiny icons, 64-128 px JPEG/PNG": read(tiny[: count * 4]),
    }


def reference_input(data: bytes) -> Image.Image:
    """Every decoded pixel, oriented, alpha over white: what each reference starts from."""
    with Image.open(io.BytesIO(data)) as opened:
        image = ImageOps.exif_transpose(opened.convert("RGBA"))
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    white.alpha_composite(image)
    return white.convert("RGB")


def cpu_ms(pictures: list[bytes], spec: ModelSpec, side: int) -> float:
    """The best of three passes, CPU milliseconds a picture, for prepare and fill."""
    target = Target(spec, side, side)
    slot = np.empty(input_shape(spec, 1, side, side)[1:], np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for data in pictures:
            [prepared], _ = prepare_targets(data, [target], LIMIT)
            fill(slot, prepared, spec)
        best = min(best, time.process_time() - start)
    return 1000 * best / len(pictures)


def differences(pictures: list[bytes], family: Family, spec: ModelSpec) -> dict[str, float]:
    target = Target(spec, family.side, family.side)
    totals = dict.fromkeys(family.references, 0.0)
    for data in pictures:
        [prepared], _ = prepare_targets(data, [target], LIMIT)
        source = reference_input(data)
        for name, reference in family.references.items():
            expected = reference(source).astype(np.float32)
            totals[name] += float(np.abs(prepared.astype(np.float32) - expected).mean())
    return {name: total / len(pictures) for name, total in totals.items()}


def rows(sets: dict[str, list[bytes]]) -> list[str]:
    lines = [
        "| family | pictures | lanczos ms | bilinear ms | bilinear / lanczos "
        "| difference from each reference: lanczos → bilinear (grey levels) |",
        "|---|---|---|---|---|---|",
    ]
    for family in FAMILIES:
        lanczos, bilinear = (
            replace(family.spec, resize="lanczos"),
            replace(family.spec, resize="bilinear"),
        )
        for kind, pictures in sets.items():
            before, after = (
                cpu_ms(pictures, lanczos, family.side),
                cpu_ms(pictures, bilinear, family.side),
            )
            was, now = (
                differences(pictures, family, lanczos),
                differences(pictures, family, bilinear),
            )
            diff = "; ".join(f"{name}: {was[name]:.2f} → {now[name]:.2f}" for name in was)
            lines.append(
                f"| {family.name} | {kind} ({len(pictures)}) | {before:.2f} | {after:.2f} "
                f"| {after / before:.2f} | {diff} |"
            )
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pictures", type=int, default=120, help="of each kind (tiny: 4x)")
    default_work = Path(tempfile.gettempdir()) / "dtindex-pipeline"
    parser.add_argument("--work", type=Path, default=default_work, help="pictures, cached")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    sets = picture_sets(args.work, args.pictures)
    cores = os.cpu_count() or 1
    about = f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
    about += f"{cores} cores, Python {platform.python_version()}, one process"
    lines = [f"# Decoding and preparation per family ({about})", "", *rows(sets)]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{time.strftime('%Y-%m-%d')}-{cores}cores-decoding.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
