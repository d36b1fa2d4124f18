"""Pictures for the pipeline benchmark (issue 13), cut from the photographs of `corpus`.

- Illustrations: JPEGs (quality 90) at the sizes illustration galleries hold (1024x1448,
  1200x900, 2048x1536, 850x1200, 1280x1810, 1920x1080), each a crop of a photograph
  scaled up with Lanczos past the crop's size, at one of four scales and a different
  offset, so every file's content differs. Built once per file into a cache folder.
- Web-size pictures: the same, at the sizes a web page shows (0.3 to 1 megapixels,
  quality 85, about 70 KB), where DCT scaling can do little and the cost per picture
  beyond decoding shows.
- Tiny pictures: 64 to 128 pixels a side, JPEG and PNG in turn, crops of the photographs
  scaled down, in folders of 100 with mtimes in the past: a gallery of thumbnails and
  icons, where the cost per file (not per pixel) is what is measured. A crop that would
  repeat one already made (a flat corner) is moved until it does not.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from benchmarks import corpus

SIZES = ((1024, 1448), (1200, 900), (2048, 1536), (850, 1200), (1280, 1810), (1920, 1080))
WEB_SIZES = ((640, 480), (800, 600), (1000, 750), (720, 960), (900, 1200), (1024, 768))
KINDS = {"illustrations": (SIZES, 90), "web": (WEB_SIZES, 85)}  # sizes, JPEG quality
SCALES = (1.1, 1.25, 1.45, 1.7)  # how far past covering the crop the photograph is scaled
TINY_SIDES = (160, 224, 320, 448)  # the short side of the photographs tiny crops come from
GOLDEN = 0.6180339887498949
PAST_NS = 1_600_000_000 * 10**9  # September 2020: settled files, as a gallery's are


def _photos() -> list[Image.Image]:
    images = []
    for path in corpus.source_photos():
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    if len(images) != len(corpus.PHOTOS):
        raise SystemExit("this scikit-image lacks some of the benchmark's photographs")
    return images


def _offset(free_x: int, free_y: int, j: int) -> tuple[int, int]:
    """The j-th of a low-discrepancy sequence of offsets: distinct, spread over the slack."""
    return round(free_x * ((j * GOLDEN) % 1.0)), round(free_y * ((j * GOLDEN**2 + 0.5) % 1.0))


def illustration_plan(i: int, kind: str = "illustrations") -> tuple[int, tuple[int, int], int, int]:
    """Picture i: which photograph, the crop's size, the scale's index and the offset's."""
    sizes = KINDS[kind][0]
    photos = len(corpus.PHOTOS)
    rest = i // (photos * len(sizes))
    return i % photos, sizes[(i // photos) % len(sizes)], rest % len(SCALES), rest // len(SCALES)


def illustration_path(folder: Path, i: int, kind: str = "illustrations") -> Path:
    photo, (width, height), scale, _ = illustration_plan(i, kind)
    stem = Path(corpus.PHOTOS[photo]).stem
    return folder / f"{i:05}-{stem}-{width}x{height}-s{scale}.jpg"


def _scaled(photo: Image.Image, size: tuple[int, int], scale: float) -> Image.Image:
    cover = max(size[0] / photo.width, size[1] / photo.height) * scale
    target = (round(photo.width * cover), round(photo.height * cover))
    return photo.resize(target, Image.Resampling.LANCZOS)


_PHOTOS: list[Image.Image] = []


def _load_photos() -> None:
    _PHOTOS[:] = _photos()


def _make_group(folder: Path, indices: list[int], kind: str) -> None:
    """The crops of one scaled photograph (in a worker: the photographs are loaded once)."""
    photo, size, scale, _ = illustration_plan(indices[0], kind)
    base = _scaled(_PHOTOS[photo], size, SCALES[scale])
    for i in indices:
        j = illustration_plan(i, kind)[3]
        left, top = _offset(base.width - size[0], base.height - size[1], j)
        crop = base.crop((left, top, left + size[0], top + size[1]))
        path = illustration_path(folder, i, kind)
        temporary = path.with_suffix(".part")
        crop.save(temporary, "JPEG", quality=KINDS[kind][1])
        os.utime(temporary, ns=(PAST_NS, PAST_NS))
        temporary.rename(path)


def build_illustrations(folder: Path, count: int, kind: str = "illustrations") -> list[Path]:
    """`count` illustration-size (or `kind` "web": web-size) JPEGs, cached in `folder`
    (made only where missing), made by one process per core: a GPU machine's benchmark
    wants thousands of them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [illustration_path(folder, i, kind) for i in range(count)]
    missing = [i for i in range(count) if not paths[i].exists()]
    if not missing:
        return paths
    print(f"making {len(missing)} {kind} pictures in {folder} ...", flush=True)
    groups: dict[tuple[int, tuple[int, int], int], list[int]] = {}
    for i in missing:  # one scaled photograph serves many crops
        groups.setdefault(illustration_plan(i, kind)[:3], []).append(i)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(mp_context=context, initializer=_load_photos) as pool:
        jobs = list(groups.values())
        list(pool.map(_make_group, [folder] * len(jobs), jobs, [kind] * len(jobs)))
    return paths


def gallery_of(paths: list[Path], folder: Path, per_folder: int = 100) -> Path:
    """A folder holding exactly `paths` (hard links, in folders of `per_folder`), for scan."""
    shutil.rmtree(folder, ignore_errors=True)
    for n, path in enumerate(paths):
        sub = folder / f"{n // per_folder:05}"
        sub.mkdir(parents=True, exist_ok=True)
        os.link(path, sub / path.name)
    return folder


def _tiny_bases(photos: list[Image.Image]) -> list[list[Image.Image]]:
    bases = []
    for photo in photos:
        scales = [side / min(photo.size) for side in TINY_SIDES]
        sizes = [(round(photo.width * s), round(photo.height * s)) for s in scales]
        bases.append([photo.resize(size, Image.Resampling.LANCZOS) for size in sizes])
    return bases


def _tiny_crops(bases: list[list[Image.Image]], count: int) -> Iterator[tuple[str, bytes]]:
    """(extension, file bytes) of `count` distinct tiny pictures."""
    seen: set[bytes] = set()
    photos = len(bases)
    for i in range(count):
        base = bases[i % photos][(i // photos) % len(TINY_SIDES)]
        width, height = 64 + (i * 37) % 65, 64 + (i * 53) % 65
        ext, fmt, options = ("jpg", "JPEG", {"quality": 90}) if i % 2 == 0 else ("png", "PNG", {})
        j = i // (photos * len(TINY_SIDES))
        for _ in range(100):
            left, top = _offset(base.width - width, base.height - height, j)
            buffer = io.BytesIO()
            base.crop((left, top, left + width, top + height)).save(buffer, fmt, **options)
            digest = hashlib.sha1(buffer.getvalue()).digest()
            if digest not in seen:
                break
            j += 7919  # a flat region gave a crop made before: try elsewhere
        else:
            raise SystemExit(f"tiny picture {i}: no crop differs from those made before")
        seen.add(digest)
        yield ext, buffer.getvalue()


def build_tiny(folder: Path, count: int) -> tuple[Path, list[Path]]:
    """`count` distinct tiny pictures in `folder`/gallery, in folders of 100; cached whole."""
    gallery = folder / "gallery"
    marker = folder / f".complete-{count}"
    if not marker.exists():
        print(f"making {count} tiny pictures in {gallery} ...", flush=True)
        for old in folder.glob(".complete-*"):
            old.unlink()
        shutil.rmtree(gallery, ignore_errors=True)
        for i, (ext, data) in enumerate(_tiny_crops(_tiny_bases(_photos()), count)):
            sub = gallery / f"{i // 100:05}"
            if i % 100 == 0:
                sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"{i:06}.{ext}"
            path.write_bytes(data)
            os.utime(path, ns=(PAST_NS, PAST_NS))
        marker.touch()
    paths = sorted(p for p in gallery.rglob("*") if p.is_file())
    return gallery, paths
