"""`.model` files, `deeptagger.toml` and tag lists: what they accept and how they refuse."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from conftest import picture, write_model
from hypothesis import given
from hypothesis import strategies as st

from indexer.config import load_config, locate_config, parse_config
from indexer.errors import ConfigError, ModelError
from indexer.modelfile import parse_model_text, read_model_file
from indexer.models.taglist import parse_taglist
from indexer.preparation import ModelSpec


def test_model_file_with_comments_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "wd.model"
    path.write_text(
        "# WD v1.4\n\nname = wd14\nshape=nhwc  # layout\nchannels = BGR\n"
        "normalize = false\npad = white\nsize = 448\n"
    )
    declared = read_model_file(path)
    assert declared.name == "wd14"
    assert declared.onnx == tmp_path / "wd.onnx" and declared.tags == tmp_path / "wd.tags"
    assert declared.spec == ModelSpec(channels="bgr", size=448)
    (tmp_path / "plain.model").write_text("")
    assert read_model_file(tmp_path / "plain.model").spec == ModelSpec()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shape = nhcw\n", "shape = 'nhcw' is not one of nhwc, nchw"),
        ("pad = purple\n", "is not one of white, black, edge, stretch or [R, G, B]"),
        ("normalize = maybe\n", "not a boolean"),
        ("size = big\n", "not a positive integer"),
        ("colour = rgb\n", "unknown key 'colour'"),
        ("interpret = softmax\n", "not one of sigmoid, false"),
        ("just words\n", ":1: expected key=value"),
    ],
)
def test_model_file_errors_name_file_key_and_values(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.model"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path))) as info:
        read_model_file(path)
    assert message in str(info.value)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        st.from_regex(r"[a-z0-9 ]{0,8}", fullmatch=True),
        max_size=6,
    )
)
def test_model_text_round_trips(pairs: dict[str, str]) -> None:
    text = "# comment\n" + "".join(f"{k} = {v}\n\n" for k, v in pairs.items())
    assert parse_model_text(text, "x") == {k: v.strip() for k, v in pairs.items()}


def test_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "deeptagger.toml"
    path.parent.mkdir()
    path.write_text(
        'database = "db/index.sqlite"\nroots = ["gallery"]\n'
        '[scan]\nexclude = ["*.tmp"]\n'
        '[models.cf]\nonnx = "m/cf.onnx"\ntags = "m/cf.csv"\nshape = "nchw"\n'
        'normalize = true\npad = "stretch"\nsize = 448\ninterpret = "sigmoid"\n'
        'threshold = 0.7\ntitle = "CAFormer"\nenabled = false\n'
    )
    config = load_config(path, required=True)
    assert config.database == path.parent / "db/index.sqlite"
    assert config.roots == (path.parent / "gallery",)
    model = config.models["cf"].resolve()
    assert model.onnx == path.parent / "m/cf.onnx" and model.title == "CAFormer"
    assert model.spec == ModelSpec("nchw", "rgb", True, "stretch", 448, "sigmoid")
    assert model.threshold == 0.7
    assert [m.name for m in config.default_models()] == ["palette"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        (
            "[models.a]\nonnx = 'a.onnx'\ntags = 'a.tags'\npad = 'purple'\n",
            "[models.a]: pad = 'purple' is not one of white, black, edge, stretch",
        ),
        ("[models.a]\nonnx = 'a.onnx'\n", "needs model"),
        ("[models.a]\nmodel = 'a.model'\nthreshold = 2\n", "threshold = 2 must be a number from 0"),
        ("[models.a]\nmodel = 'a.model'\nbatch = 2\n", "unknown key 'batch'"),
        ("batch = 0\n", "batch = 0 must be an integer"),
        ("roots = 'x'\n", "roots must be a list"),
        ("[scan]\nfollow_symlinks = 'no'\n", "[scan]: follow_symlinks = 'no' must be true or"),
        ("[scan]\nfollow_symlinks = 1\n", "[scan]: follow_symlinks = 1 must be true or false"),
        ("[scan]\nfollow_symlinks = 'true'\n", "follow_symlinks = 'true' must be true or"),
        ("decode = 'GPU'\n", "decode = 'GPU' is not one of auto, cpu, gpu"),
        ("decode = true\n", "decode = True is not one of auto, cpu, gpu"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "deeptagger.toml"
    with pytest.raises(ConfigError, match=re.escape(str(path))) as info:
        parse_config(tomllib.loads(text), path)
    assert message in str(info.value)


@pytest.mark.parametrize("value", [True, False])
def test_follow_symlinks_takes_toml_booleans(tmp_path: Path, value: bool) -> None:
    path = tmp_path / "deeptagger.toml"
    path.write_text(f"[scan]\nfollow_symlinks = {str(value).lower()}\n")
    assert load_config(path, required=True).scan.follow_symlinks is value
    assert load_config(None).scan.follow_symlinks is False


def test_string_follow_symlinks_is_refused_through_the_cli(tmp_path: Path, cli) -> None:
    """`"no"` once meant true (bool of a non-empty string): it must stop the command."""
    (tmp_path / "deeptagger.toml").write_text('[scan]\nfollow_symlinks = "no"\n')
    (tmp_path / "gallery").mkdir()
    code, out, err = cli("scan", str(tmp_path / "gallery"))
    assert code != 0 and out == b"" and "Traceback" not in err
    assert "deeptagger.toml [scan]: follow_symlinks = 'no' must be true or false" in err


BOM = "\ufeff".encode()


def test_config_file_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "deeptagger.toml"
    path.write_bytes(BOM + b'roots = ["gallery"]\n[scan]\nfollow_symlinks = true\n')
    config = load_config(path, required=True)
    assert config.roots == (tmp_path / "gallery",) and config.scan.follow_symlinks


def test_model_file_may_start_with_a_byte_order_mark(tmp_path: Path, cli) -> None:
    model = write_model(tmp_path / "m", "bom", positions=[0], settings="pad = edge\n")
    text = model.read_bytes()
    model.write_bytes(BOM + b"name = renamed\n" + text.replace(b"name = bom\n", b""))
    declared = read_model_file(model)
    assert declared.name == "renamed" and declared.spec == ModelSpec(pad="edge")
    code, out, err = cli("tag", "-t", "0", str(model), str(picture(tmp_path / "x.png")))
    assert code == 0, err
    assert out.decode().split("\t")[:2] == [str(tmp_path / "x.png"), "p0"]


def test_missing_model_files_only_fail_when_used(tmp_path: Path) -> None:
    path = tmp_path / "deeptagger.toml"
    path.write_text('[models.gone]\nmodel = "nowhere/gone.model"\n')
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"gone\.model"):
        config.models["gone"].resolve()


def test_config_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert locate_config(None, env) == (tmp_path / "xdg" / "dtindex" / "deeptagger.toml", False)
    (tmp_path / "deeptagger.toml").write_text("")
    assert locate_config(None, env) == (Path("deeptagger.toml"), False)
    assert locate_config(None, {**env, "DTINDEX_CONFIG": "/x.toml"}) == (Path("/x.toml"), True)
    assert locate_config("/y.toml", env) == (Path("/y.toml"), True)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", required=True)
    assert load_config(tmp_path / "absent.toml").models == {}


EXAMPLE = Path(__file__).parent.parent / "deeptagger.toml"


def test_dtindex_in_the_projects_folder_lists_no_example_model(cli, monkeypatch) -> None:
    """The project's deeptagger.toml (read by dtindex run in its folder) holds its model
    tables commented out: `models` lists the built-in palette alone, nothing unavailable."""
    monkeypatch.chdir(EXAMPLE.parent)
    code, out, err = cli("models")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert lines[0] == f"config: {EXAMPLE}", lines  # named: it is not the user's own
    assert lines[1].startswith("* palette: "), out
    assert b"unavailable" not in out and b"deepdanbooru" not in out


def test_the_shipped_example_tables_load_once_uncommented() -> None:
    """Uncommented (keys and table headers only; prose stays a comment), the example's
    settings and every model table are a config that loads: the examples do not rot."""
    assert load_config(EXAMPLE, required=True).models == {}
    code = re.sub(r"(?m)^# (?=\[|[a-z_0-9]+ = )", "", EXAMPLE.read_text())
    config = parse_config(tomllib.loads(code), EXAMPLE)
    names = {"deepdanbooru", "wd14-vit-v2", "caformer", "tresnetd", "wd-vit-v3", "pixai"}
    assert names <= set(config.models) and len(config.models) == 17


def test_tag_lists() -> None:
    plain = parse_taglist("1girl\r\nsolo\r\n\r\n", "t")
    assert plain.names == ("1girl", "solo") and plain.categories == (None, None)
    wd = parse_taglist(
        "tag_id,name,category,count\n9999999,general,9,100\n"
        "470575,1girl,0,4000\n212816,hatsune_miku,4,10\n",
        "s",
    )
    assert wd.names == ("general", "1girl", "hatsune_miku") and wd.categories == (
        "rating",
        "general",
        "character",
    )
    ml = parse_taglist('name,category,count\n1girl,0,1\n":d",0,2\n', "m")
    assert ml.names == ("1girl", ":d")
    only = parse_taglist("name\nsolo\n", "o")  # one column with a header line: plain list
    assert only.names == ("name", "solo")
    with pytest.raises(ModelError, match="tag 2 is empty"):
        parse_taglist("a\n\nb\n", "e")
    with pytest.raises(ModelError, match="empty"):
        parse_taglist("", "e")


SETTING_VALUES = st.one_of(
    st.booleans(),
    st.integers(-5, 5000),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["nhwc", "nchw", "rgb", "bgr", "white", "edge", "stretch", "sigmoid"]),
)
MODEL_KEYS = st.sampled_from(
    [
        "shape",
        "channels",
        "normalize",
        "pad",
        "size",
        "interpret",
        "upscale",
        "threshold",
        "general",
        "character",
        "title",
        "enabled",
        "onnx",
        "tags",
        "model",
        "colour",
    ]
)


@given(st.dictionaries(MODEL_KEYS, SETTING_VALUES, max_size=8))
def test_any_model_table_loads_or_is_refused_with_a_config_error(table: dict[str, object]) -> None:
    path = Path("/conf/deeptagger.toml")
    try:
        config = parse_config({"models": {"m": table}}, path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))
        return
    entry = config.models["m"]
    assert entry.where.startswith(str(path))


@given(st.text(max_size=200))
def test_any_model_file_text_parses_or_names_the_line(text: str) -> None:
    try:
        pairs = parse_model_text(text, "x.model")
    except ConfigError as exc:
        assert str(exc).startswith("x.model:")
        return
    assert all(key == key.strip().lower() and key for key in pairs)


@pytest.mark.parametrize("name", ["a\tb", "a\nb", "wd\x01", "wd\x7f", "a\u2028b", ""])
def test_a_model_name_with_a_control_character_is_refused(tmp_path: Path, cli, name: str) -> None:
    """XMP sidecars record `MODEL<TAB>KEYWORD`: a model named with a tab (or a line break)
    would never find its own keywords there again, so the config is refused at once."""
    model = write_model(tmp_path / "models", "m", mean=True)
    quoted = "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in name)  # TOML's escape
    (tmp_path / "deeptagger.toml").write_text(f'[models."{quoted}"]\nmodel = "{model}"\n')
    picture(tmp_path / "gallery" / "a.png")
    code, out, err = cli("scan", str(tmp_path / "gallery"))
    assert (code, out) == (1, b"") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "deeptagger.toml" in err and f"model name {name!r}" in err, err
    (tmp_path / "deeptagger.toml").write_text("")
    (tmp_path / "x.model").write_text("name = a\tb\n")
    with pytest.raises(ConfigError, match=r"x\.model: model name 'a\\tb'"):
        read_model_file(tmp_path / "x.model")
