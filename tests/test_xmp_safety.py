"""XMP sidecars stay the user's and stay readable under what happens around an export:
a photo tool saving the sidecar while it is merged, a second export writing the same
sidecars, the user's escaped line breaks, tag names XML cannot hold, names near the file
system's limit. Checked through the CLI, real files and a real reader (exiftool)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import picture, write_model
from test_xmp import SUBJECT, WARM, read_xmp


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """Two plain models with the same tag names (c0, c1, c2), in tmp_path's config."""
    folder = tmp_path / "models"
    means = write_model(folder, "means", mean=True, settings="normalize = true\n")
    twin = write_model(folder, "twin", mean=True, settings="normalize = true\nchannels = bgr\n")
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.means]\nmodel = "{means}"\n[models.twin]\nmodel = "{twin}"\n'
    )
    return tmp_path / "gallery"


def scanned(cli, root: Path, *names: str) -> Path:
    for name in names:
        picture(root / name, WARM)
    code, _, err = cli("scan", str(root))
    assert code == 0, err
    return root


def test_a_name_of_240_bytes_gets_its_sidecar(cli, models: Path) -> None:
    name = "x" * 236 + ".png"  # NAME.xmp and NAME.txt are 244 bytes: legal names
    root = scanned(cli, models, name)
    for fmt, suffix in (("xmp", ".xmp"), ("hydrus", ".txt")):
        code, _, err = cli("export", "--model", "means", "--format", fmt, "--beside")
        assert code == 0, err
        assert (root / (name + suffix)).exists()
    assert read_xmp(root / (name + ".xmp"))[SUBJECT] == ["c0", "c1", "c2"]
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [name, name + ".xmp", name + ".txt", ".dtindex-sidecars"]
    )
