"""HEIF/HEIC and JPEG XL pictures: read through their plugins (the `heif` and `jxl`
extras), registered only when such a file is met; without one, a missing codec that the
next scan retries, never a broken picture.

The pictures are written by the plugins themselves, in a process of their own (this one
stays without them). A plugin is made missing by a sitecustomize the test puts on
PYTHONPATH, which the decoder processes a scan spawns inherit: it fails their import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import age, picture

# format: (the file's extension, the plugin's module)
FORMATS = {"heif": ("heic", "pillow_heif"), "jxl": ("jxl", "pillow_jxl")}

ENCODE = """
import sys
from PIL import Image
fmt, path = sys.argv[1:]
if fmt == "heif":
    import pillow_heif
    pillow_heif.register_heif_opener()
    options = {"format": "HEIF", "quality": 95}
else:
    import pillow_jxl  # registers JPEG XL with Pillow
    options = {"format": "JXL", "lossless": True}
Image.new("RGB", (40, 30), (250, 10, 10)).save(path, **options)
"""

HIDE = """
import os, sys

class Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in os.environ.get("DTINDEX_TEST_MISSING", "").split(","):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, Hidden())
"""


def red_picture(folder: Path, fmt: str) -> Path:
    """A red picture the format's plugin writes (skipped without it, but not on CI,
    whose test extra installs both)."""
    ext, module = FORMATS[fmt]
    if not os.environ.get("CI"):
        pytest.importorskip(module, reason=f"pip install 'dtindex[{fmt}]'")
    path = folder / f"red.{ext}"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", ENCODE, fmt, str(path)], check=True)
    return path


def tags(cli, name: str) -> set[str]:
    code, out, err = cli("export", "-m", "palette", "--id", "path")
    assert code == 0, err
    fields = [line.split("\t") for line in out.decode().splitlines()]
    return {tag for path, tag, _ in fields if path.endswith(name)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_picture_is_tagged_through_its_formats_plugin(cli, tmp_path: Path, fmt: str) -> None:
    red = red_picture(tmp_path / "gallery", fmt)
    picture(tmp_path / "gallery" / "blue.png", (20, 60, 230), old=False)
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 0, err
    assert json.loads(out)["tagged"] == 2
    assert "red_theme" in tags(cli, red.name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_picture_whose_decoder_is_missing_is_retried_once_it_is_installed(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    red = red_picture(tmp_path / "gallery", fmt)
    age(red)  # read again only as a retry, not because it was written a moment ago
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HIDE)
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.setenv("DTINDEX_TEST_MISSING", FORMATS[fmt][1])

    code, out, err = cli("scan", "--json", "gallery")
    assert code == 1, err  # a failure the next scan retries: never 0 with less
    assert json.loads(out)["to_retry"] == 1
    assert f"{red.name}: " in err and f"pip install 'dtindex[{fmt}]'" in err, err
    code, out, err = cli("status")
    assert code == 0, err
    (line,) = [line for line in out.decode().splitlines() if line.startswith("failed: ")]
    assert "no " in line and "decoder is installed" in line, line
    assert "[codec, retried by the next scan; palette" in line, line

    monkeypatch.delenv("DTINDEX_TEST_MISSING")  # as if the extra were installed now
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 0, err
    assert json.loads(out)["tagged"] == 1
    assert "red_theme" in tags(cli, red.name)


def test_no_plugin_is_imported_until_a_picture_needs_one(tmp_path: Path) -> None:
    """dtindex's modules and a PNG leave both plugins unimported; a HEIF brings its own."""
    heic = red_picture(tmp_path, "heif")
    png = picture(tmp_path / "blue.png", (20, 60, 230))
    check = f"""
import sys
import indexer.cli.main, indexer.imaging.decoder
from indexer.imaging.messages import Target
from indexer.imaging.tasks import prepare_targets, look
from indexer.preparation import ModelSpec
plugins = lambda: sorted(m for m in ("pillow_heif", "pillow_jxl") if m in sys.modules)
target = [Target(ModelSpec(), 8, 8)]
look({bytes(png)!r}); prepare_targets(open({str(png)!r}, "rb").read(), target, 10**8)
print(plugins())
prepare_targets(open({str(heic)!r}, "rb").read(), target, 10**8)
print(plugins())
"""
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['pillow_heif']"]
