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
