"""`dtindex model add` on generated folders in every published layout, and `models`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import picture, write_model


def published(folder: Path, layout: str) -> Path:
    """A generated model laid out as its family publishes it."""
    staging = folder / "staging"
    shape = "nchw" if layout == "ml" else "nhwc"
    write_model(staging, "net", shape=shape, mean=True, fixed_size=layout != "ml", size=8)
    target = folder / layout
    target.mkdir(parents=True)
    if layout == "wd":
        shutil.copy(staging / "net.onnx", target / "model.onnx")
        (target / "selected_tags.csv").write_text(
            "tag_id,name,category,count\n1,general,9,5\n2,red,0,5\n3,miku,4,5\n"
        )
    elif layout == "ml":
        shutil.copy(staging / "net.onnx", target / "ml_caformer_m36_dec-5-97527.onnx")
        (target / "tags.csv").write_text("name,category\nred,0\ngreen,0\nblue,0\n")
    elif layout == "dd":
        shutil.copy(staging / "net.onnx", target / "model-resnet.onnx")
        (target / "project.json").write_text(json.dumps({"image_width": 8, "image_height": 8}))
        (target / "tags.txt").write_text("red\ngreen\nblue\n")
    return target


@pytest.mark.parametrize(
    ("layout", "family"), [("wd", "WD"), ("ml", "ML-Danbooru"), ("dd", "DeepDanbooru")]
)
def test_add_each_layout_then_tag_with_it(cli, tmp_path: Path, layout: str, family: str) -> None:
    source = published(tmp_path / "downloads", layout)
    code, _, err = cli("model", "add", "mine", str(source))
    assert code == 0, err
    assert f"added mine ({family}" in err
    # No config yet: the model goes to the user's config folder.
    config = (tmp_path / "xdg-config" / "dtindex" / "deeptagger.toml").read_text()
    assert "[models.mine]" in config and "shape =" in config and "threshold =" in config
    image = picture(tmp_path / "red.png", (255, 0, 0))
    code, out, err = cli("tag", "-t", "0", "mine", str(image))
    assert code == 0, err
    assert out  # the model runs through the config it was given
    code, out, _ = cli("models")
    assert f"mine: {family}" in out.decode()


def test_add_a_model_file_and_refuse_duplicates(cli, tmp_path: Path) -> None:
    model = write_model(tmp_path / "m", "probe", positions=[0])
    assert cli("model", "add", "probe", str(model))[0] == 0
    code, _, err = cli("model", "add", "probe", str(model))
    assert code == 2 and "already there" in err
    code, _, err = cli("model", "add", "palette", str(model))  # the built-in one's name
    assert code == 2 and "'palette' is the built-in model's name" in err, err
    assert 'palette: custom "Palette colour tags (built in)"' in cli("models")[1].decode()


def test_hub_id_from_the_cache_layout(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = published(tmp_path / "downloads", "wd")
    cache = tmp_path / "hub"
    snapshot = cache / "models--SmilingWolf--wd-test" / "snapshots" / "0123abc"
    shutil.copytree(source, snapshot)
    (cache / "models--SmilingWolf--wd-test" / "refs").mkdir()
    (cache / "models--SmilingWolf--wd-test" / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # huggingface_hub, where installed, reads the cache
    code, _, err = cli("model", "add", "wdtest", "SmilingWolf/wd-test")
    assert code == 0, err
    code, _, err = cli("model", "add", "other", "SmilingWolf/not-there")
    assert code == 2  # without huggingface_hub: not cached; with it: offline
    assert "not in the Hugging Face cache" in err or "cannot download from the Hugging Face" in err


def test_unrecognised_folder_and_unconverted_deepdanbooru(cli, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.md").write_text("x")
    code, _, err = cli("model", "add", "junk", str(tmp_path / "junk"))
    assert code == 2 and "no model layout recognised" in err and "readme.md" in err
    dd = tmp_path / "dd"
    dd.mkdir()
    (dd / "project.json").write_text("{}")
    (dd / "tags.txt").write_text("a\n")
    (dd / "model-resnet_custom_v3.h5").write_bytes(b"keras")
    code, _, err = cli("model", "add", "dd", str(dd))
    assert code == 2 and "must be converted to ONNX" in err and "dtindex[convert]" in err
    assert not (tmp_path / "xdg-config" / "dtindex" / "deeptagger.toml").exists()


def test_add_names_the_config_it_wrote_and_the_title_a_model_file_declares(
    cli, tmp_path: Path
) -> None:
    model = write_model(tmp_path / "m", "probe", positions=[0], settings="")
    model.write_text("name = Probe of the first pixel\n" + model.read_text().split("\n", 1)[1])
    code, _, err = cli("model", "add", "probe", str(model))
    assert code == 0, err
    config = tmp_path / "xdg-config" / "dtindex" / "deeptagger.toml"
    assert f"wrote [models.probe] to {config} (created)" in err
    assert 'title = "Probe of the first pixel"' in config.read_text()
    (tmp_path / "deeptagger.toml").write_text("")  # found in the working folder, not named
    code, _, err = cli("model", "add", "again", str(model))
    assert code == 0, err
    assert f"wrote [models.again] to {tmp_path / 'deeptagger.toml'}\n" in err


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_add_asks_for_a_config_before_growing_a_projects_tracked_file(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a project's folder (dtindex's own holds an example deeptagger.toml), the config
    found there is tracked by git: `model add` leaves it as it was and asks for --config;
    named, or untracked, it is written and named."""
    model = write_model(tmp_path / "m", "probe", positions=[0])
    project = tmp_path / "project"
    project.mkdir()
    example = project / "deeptagger.toml"
    example.write_text("# an example\n")
    git = ["git", "-C", str(project)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "deeptagger.toml"], check=True)
    monkeypatch.chdir(project)
    code, _, err = cli("model", "add", "probe", str(model))
    assert code == 2, err
    assert "deeptagger.toml: found in this folder and tracked by git" in err
    assert "--config FILE" in err and err.count("\n") == 1
    assert example.read_text() == "# an example\n"
    code, _, err = cli("--config", "deeptagger.toml", "model", "add", "probe", str(model))
    assert code == 0, err
    assert (
        "wrote [models.probe] to " + str(example) in err and "[models.probe]" in example.read_text()
    )
    subprocess.run([*git, "rm", "-qf", "--cached", "deeptagger.toml"], check=True)
    code, _, err = cli("model", "add", "again", str(model))  # untracked: the user's own
    assert code == 0, err
    assert "[models.again]" in example.read_text()


def test_add_records_the_size_the_graph_has(cli, tmp_path: Path) -> None:
    """A WD folder whose graph is fixed at 8x8 is recorded as 8, not WD's usual 448."""
    source = published(tmp_path / "downloads", "wd")
    code, _, err = cli("model", "add", "small", str(source))
    assert code == 0, err
    assert "input 8x8" in err
    table = (tmp_path / "xdg-config" / "dtindex" / "deeptagger.toml").read_text()
    assert "size = 8\n" in table and "448" not in table
