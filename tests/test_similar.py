"""`dtindex similar`: stored embeddings, nearest pictures by cosine, through a real scan."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conftest import BOTH, picture
from test_families import TAGS, reveal

COLOURS = {
    "red": (250, 10, 10),
    "dark-red": (160, 8, 6),
    "orange": (250, 130, 0),
    "green": (10, 240, 20),
    "blue": (10, 20, 250),
    "navy": (0, 0, 120),
}


def embedding_model(tmp_path: Path, embedding: bool = True, vector: str = "mean") -> Path:
    """A WD-like model whose embedding is the picture's mean colour (BGR)."""
    folder = tmp_path / "model"
    reveal(folder / "model.onnx", "nhwc", [("output", "flat"), ("vec", vector)])
    (folder / "model.tags").write_text("\n".join(TAGS) + "\n")
    table = '[models.emb]\nonnx = "model/model.onnx"\ntags = "model/model.tags"\n'
    table += 'channels = "bgr"\n' + ('embedding = "vec"\n' if embedding else "")
    config = tmp_path / "deeptagger.toml"
    config.write_text(f'database = "index.sqlite"\n{table}')
    return config


@BOTH
def test_similar_lists_pictures_of_the_same_colours_first(cli, tmp_path: Path) -> None:
    config = embedding_model(tmp_path)
    gallery = tmp_path / "gallery"
    for name, colour in COLOURS.items():
        picture(gallery / f"{name}.png", colour, old=False)  # written a moment ago
    (gallery / "copies").mkdir()
    shutil.copy(gallery / "red.png", gallery / "copies" / "red-again.png")
    code, _, err = cli("--config", str(config), "scan", str(gallery))
    assert code == 0, err
    os.chdir(gallery / "copies")
    code, _, err = cli("--config", str(config), "scan", ".")  # a root nested in the other
    assert code == 0, err
    code, out, err = cli("--config", str(config), "similar", "../red.png", "-n", "3")
    assert code == 0, err
    lines = [line.split("\t") for line in out.decode().splitlines()]
    assert [Path(p).name for _, p in lines][:2] == ["dark-red.png", "orange.png"]
    assert len(lines) == 3
    scores = [float(s) for s, _ in lines]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.99
    code, out, _ = cli("--config", str(config), "similar", "../blue.png")
    names = [Path(line.split("\t")[1]).name for line in out.decode().splitlines()]
    assert names[0] == "navy.png" and len(names) == 5  # every other picture, copies left out
    assert len({"red.png", "red-again.png"} & set(names)) == 1  # one line per content


def test_similar_says_why_it_cannot_answer(cli, tmp_path: Path) -> None:
    config = embedding_model(tmp_path, embedding=False)
    gallery = tmp_path / "gallery"
    picture(gallery / "red.png", COLOURS["red"])
    assert cli("--config", str(config), "scan", str(gallery))[0] == 0
    code, out, err = cli("--config", str(config), "similar", str(gallery / "red.png"))
    assert (code, out) == (1, b"") and "no configured model stores embeddings" in err
    config = embedding_model(tmp_path)  # now it stores them: a new version, not yet run
    code, _, err = cli("--config", str(config), "similar", str(tmp_path / "elsewhere.png"))
    assert code == 1 and "elsewhere.png: no such file" in err
    code, _, err = cli(
        "--config", str(config), "similar", "--model", "emb", str(gallery / "red.png")
    )
    assert code == 1 and "stored no embedding for it" in err, err


def test_an_embedding_that_is_not_a_number_fails_the_picture(cli, tmp_path: Path) -> None:
    """Scores fine, embedding NaN: nothing of the picture is stored, the scan says the
    index is incomplete, and an export holds no result of it."""
    config = embedding_model(tmp_path, vector="nan")
    gallery = tmp_path / "gallery"
    picture(gallery / "red.png", COLOURS["red"], old=False)
    code, _, err = cli("--config", str(config), "scan", str(gallery))
    assert code == 1 and "not a number" in err, err
    code, out, err = cli("--config", str(config), "export", "-m", "emb", "-t", "0")
    assert out == b""
    code, _, err = cli("--config", str(config), "similar", str(gallery / "red.png"))
    assert code == 1 and "red.png: emb failed on it: model output is not a number" in err, err
    assert "the next scan tries it again" in err  # not the picture's fault
