"""The built-in palette model: shipped files are what the script builds, and they tag colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from indexer.models.builtin import build_palette

FOLDER = Path(build_palette.__file__).parent


def test_shipped_files_match_the_build_script() -> None:
    assert (FOLDER / "palette.onnx").read_bytes() == build_palette.build()
    assert (FOLDER / "palette.tags").read_text().split() == list(build_palette.TAGS)
    assert (FOLDER / "palette.model").read_text() == build_palette.MODEL_FILE


def test_graph_computes_the_documented_rules() -> None:
    rng = np.random.default_rng(3)
    batch = rng.random((6, 64, 64, 3), dtype=np.float32)
    batch[1] = [0.1, 0.3, 0.9]
    batch[2] = rng.random((64, 64, 1), dtype=np.float32)
    session = ort.InferenceSession(str(FOLDER / "palette.onnx"))
    scores = session.run(None, {"input": batch})[0]
    assert np.allclose(scores, build_palette.reference(batch), atol=1e-4)


def scores_for(pixels: np.ndarray) -> dict[str, float]:
    batch = np.broadcast_to(pixels, (1, 64, 64, 3)).astype(np.float32)
    return dict(zip(build_palette.TAGS, build_palette.reference(batch)[0], strict=True))


def test_colours_mean_what_danbooru_means() -> None:
    rng = np.random.default_rng(5)
    grey = np.repeat(rng.random((64, 64, 1)), 3, axis=-1)
    sepia = np.clip(
        grey @ np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]).T,
        0,
        1,
    )
    cases = {
        "red_theme": [0.85, 0.08, 0.1],
        "blue_theme": [0.1, 0.2, 0.85],
        "green_theme": [0.1, 0.7, 0.2],
        "white_theme": [0.98, 0.98, 0.98],
        "black_theme": [0.03, 0.03, 0.03],
        "brown_theme": [0.45, 0.28, 0.12],
    }
    for tag, colour in cases.items():
        scores = scores_for(np.array(colour))
        assert scores[tag] > 0.9, (tag, scores)
        assert sorted(scores, key=scores.get)[-3:].count(tag) == 1  # type: ignore[arg-type]
    assert scores_for(grey)["greyscale"] > 0.9 and scores_for(grey)["monochrome"] > 0.9
    assert scores_for(sepia)["sepia"] > 0.8 and scores_for(sepia)["greyscale"] < 0.1
    colourful = rng.random((64, 64, 3))
    assert max(scores_for(colourful).values()) < 0.2


COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "retina", "rocket", "immunohistochemistry")
GREY_PHOTOS = ("camera", "moon", "coins")


def photographs(folder: Path) -> dict[str, Path]:
    """scikit-image's photographs (shipped in its wheel) as PNG files, and two of the grey
    ones toned as a darkroom tones them: blue (a cyanotype) and sepia."""
    from PIL import Image
    from skimage import data

    pictures = {name: np.asarray(getattr(data, name)()) for name in COLOUR_PHOTOS + GREY_PHOTOS}
    pictures["motorcycle"] = np.asarray(data.stereo_motorcycle()[0])
    grey = pictures["camera"][..., None] / 255.0
    pictures["cyanotype"] = grey * np.array([60, 120, 255]) + (1 - grey) * np.array([5, 10, 60])
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    pictures["sepia"] = np.clip(np.repeat(grey, 3, -1) @ sepia.T, 0, 1) * 255
    folder.mkdir()
    paths = {}
    for name, pixels in pictures.items():
        image = Image.fromarray(pixels.astype(np.uint8)).convert("RGB")
        image.thumbnail((160, 160))
        paths[name] = folder / f"{name}.png"
        image.save(paths[name])
    return paths


def test_colour_photographs_are_not_monochrome(cli, tmp_path: Path) -> None:
    """An orange cat, a red cup, a rocket against a blue sky: colour photographs, though
    most of their pixels share a hue. Grey and toned photographs are monochrome."""
    paths = photographs(tmp_path / "photos")
    code, out, err = cli("tag", "-t", "0.5", "palette", "photos")
    assert code == 0, err
    tagged: dict[str, set[str]] = {}
    for line in out.decode().splitlines():
        path, tag, _ = line.split("\t")
        tagged.setdefault(Path(path).stem, set()).add(tag)
    for name in (*COLOUR_PHOTOS, "motorcycle"):
        assert not tagged.get(name, set()) & {"monochrome", "sepia", "greyscale"}, name
    for name in GREY_PHOTOS:
        assert {"monochrome", "greyscale"} <= tagged[name], name
    assert "monochrome" in tagged["cyanotype"] and "greyscale" not in tagged["cyanotype"]
    assert {"monochrome", "sepia"} <= tagged["sepia"]
    assert set(paths) >= set(tagged)
