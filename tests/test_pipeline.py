"""The pipeline that feeds batches from shared memory (issue 13), through the real parts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import picture, write_model


def weights(out: bytes | str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    text = out.decode() if isinstance(out, bytes) else out
    for line in text.splitlines():
        path, _tag, weight = line.split("\t")
        found.setdefault(path, []).append(float(weight))
    return found


def test_failed_pictures_leave_holes_that_shift_no_other_result(tmp_path: Path, cli) -> None:
    """A picture that fails to decode keeps its slot in the batch (a hole): every other
    picture's scores must be its own, at any batch size, in any position."""
    model = write_model(tmp_path / "m", "means", mean=True, settings="normalize = true\n")
    names = []
    for i in range(11):
        path = tmp_path / "pics" / f"{i:02}.png"
        if i in (1, 4, 5, 10):  # holes at the start, middle and end of batches
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"not a picture" * (i + 1))
        else:
            picture(path, (i * 20, 255 - i * 20, 7 * i), old=False)
        names.append(f"pics/../pics/{path.name}")  # relative, through ..
    alone = {}
    for name in names:
        code, out, err = cli("tag", "-t", "0", str(model), name)
        alone.update(weights(out))
    for batch in ("1", "3", "4", "16"):
        code, out, err = cli("tag", "-t", "0", "-b", batch, str(model), *names)
        assert code == 1, err
        assert weights(out) == alone
        assert list(weights(out)) == [n for n in names if n in alone]  # in job order
        assert err.count("not a picture Pillow can identify") == 4, err


def by_name(out: bytes) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for line in out.decode().splitlines():
        path, tag, weight = line.split("\t")
        found.setdefault(os.path.basename(path), []).append((tag, weight))
    return {name: sorted(tags) for name, tags in found.items()}


def test_two_models_of_different_geometry_are_fed_from_one_decode(tmp_path: Path, cli) -> None:
    """Each model has its own ring and layout; a scan stores exactly what `tag` prints."""
    small = write_model(tmp_path / "m", "small", mean=True, settings="normalize = true\n")
    large = write_model(
        tmp_path / "m", "large", mean=True, size=24, shape="nchw",
        settings="normalize = true\nchannels = bgr\n",
    )  # fmt: skip
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.small]\nmodel = "{small}"\n[models.large]\nmodel = "{large}"\n'
    )
    gallery = tmp_path / "gallery"
    for i in range(1, 8):
        picture(gallery / f"{i}.png", (i * 30, 90, 255 - i * 30), size=(20 + i, 16), old=False)
    code, _, err = cli("scan", "-b", "3", "gallery")
    assert code == 0, err
    for name in ("small", "large"):
        code, exported, err = cli("export", "--model", name, "--id", "path", "-t", "0")
        assert code == 0, err
        code, tagged, err = cli("tag", "-t", "0", "-b", "2", name, "gallery")
        assert code == 0, err
        assert by_name(exported) == by_name(tagged)
        assert len(by_name(tagged)) == 7


def _unshare_available() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_available(), reason="needs root and unshare --mount")
def test_a_small_dev_shm_is_a_clear_error_and_a_smaller_batch_fits(tmp_path: Path) -> None:
    """A container's /dev/shm (64 MB under Docker) can be smaller than the batch rings:
    the run stops with a message saying what to change, before any decoder starts."""
    model = write_model(tmp_path / "m", "means", mean=True, size=64, settings="normalize = true\n")
    image = picture(tmp_path / "a.png", (10, 200, 30))
    dtindex = f"{sys.executable} -m indexer tag -t 0"
    script = (
        "mount -t tmpfs -o size=1m tmpfs /dev/shm || exit 99; "
        f"{dtindex} -b 64 {model} a.png; echo big=$?; "
        f"{dtindex} -b 2 {model} a.png; echo small=$?"
    )
    env = {**os.environ, "DTINDEX_CONFIG": os.devnull}
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if "big=" not in done.stdout:
        pytest.skip(f"cannot mount a tmpfs on /dev/shm here: {done.stderr}")
    assert "big=2" in done.stdout, done.stderr
    assert "shared memory is too small" in done.stderr and "--batch" in done.stderr
    assert "Traceback" not in done.stderr
    assert "small=0" in done.stdout, done.stderr
    tagged = "\n".join(line for line in done.stdout.splitlines() if "\t" in line)
    assert weights(tagged)["a.png"] == pytest.approx([10 / 255, 200 / 255, 30 / 255], abs=0.005)
    assert image.exists()
