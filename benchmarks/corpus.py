"""The benchmark's pictures: real photographs shipped in scikit-image's wheel, in the sizes
galleries hold (0.5 to 16 megapixels) and the formats they use (JPEG, PNG, WebP).

The shipped files are small (0.1 to 2 MP), so larger sizes are the same photographs
scaled up with Lanczos: still photographic content (smooth regions, real edges, how
JPEG and PNG compress photos), never generated noise.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PIL import Image

PHOTOS = ("retina.jpg", "hubble_deep_field.jpg", "astronaut.png", "coffee.png", "chelsea.png",
          "motorcycle_left.png", "rocket.jpg", "logo.png")  # fmt: skip
MEGAPIXELS = (0.5, 2.0, 8.0, 16.0)
FORMATS = (("jpg", "JPEG", {"quality": 90}), ("png", "PNG", {"compress_level": 6}),
           ("webp", "WEBP", {"quality": 90}))  # fmt: skip
# Pictures 0..95 hold every photograph at every size in every format once; from 96 on
# they repeat (and a scan would tag each repeat's content only once).
COMPLETE = len(PHOTOS) * len(MEGAPIXELS) * len(FORMATS)


def source_photos() -> list[Path]:
    try:
        folder = Path(str(resources.files("skimage") / "data"))
    except ModuleNotFoundError:
        message = "the benchmark pictures come from scikit-image: pip install '.[bench]'"
        raise SystemExit(message) from None
    return [folder / name for name in PHOTOS if (folder / name).is_file()]


def build(folder: Path, count: int) -> list[Path]:
    """`count` pictures cycling through photos, sizes and formats; cached in `folder`.

    scikit-image is needed only for pictures not in `folder` yet, so a folder built here
    can be carried to a machine without it (the GPU check).
    """
    folder.mkdir(parents=True, exist_ok=True)
    photos: dict[str, Path] = {}
    paths = []
    for i in range(count):
        name = PHOTOS[i % len(PHOTOS)]
        megapixels = MEGAPIXELS[(i // len(PHOTOS)) % len(MEGAPIXELS)]
        ext, fmt, options = FORMATS[i % len(FORMATS)]
        path = folder / f"{i:03}-{Path(name).stem}-{megapixels:g}mp.{ext}"
        if not path.exists():
            photos = photos or {photo.name: photo for photo in source_photos()}
            if name not in photos:
                raise SystemExit(f"this scikit-image does not ship {name}")
            with Image.open(photos[name]) as image:
                image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
                scale = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
                size = (round(image.width * scale), round(image.height * scale))
                resized = image.resize(size, Image.Resampling.LANCZOS)
                if fmt == "JPEG":
                    resized = resized.convert("RGB")
                resized.save(path, fmt, **options)
        paths.append(path)
    return paths
