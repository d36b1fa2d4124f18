"""Ctrl-C at any moment ends a run as interrupted (exit 130), never with a traceback; a
reader that goes away early (`dtindex tag ... | head`) ends it quietly with exit 0.

SIGINT goes to the process group, as a terminal sends it, at moments found by looking at
the process (what it has mapped, the files and processes it made), never after a sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_gallery, picture, slow_model

from indexer.imaging.spawning import MARK

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")


def mapped(name: str) -> Callable[[int, Path], bool]:
    """The process has started loading a shared library (an import under way, or done)."""

    def condition(pid: int, _: Path) -> bool:
        with contextlib.suppress(OSError):
            return name in Path(f"/proc/{pid}/maps").read_text()
        return False

    return condition


def index_opened(_: int, folder: Path) -> bool:
    """The models are loaded and the index is open; no decoder has started yet."""
    return (folder / "index.sqlite").exists()


def decoder_started(pid: int, _: Path) -> bool:
    """A decoder process is being spawned (the resource tracker does not count)."""
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            if MARK.encode() in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
    return False


def tagging(_: int, folder: Path) -> bool:
    """Results are being committed: the scan is in the middle of its batches."""
    with contextlib.suppress(sqlite3.Error):
        uri = f"file:{folder / 'index.sqlite'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return bool(db.execute("SELECT COUNT(*) FROM taggings").fetchone()[0])
    return False


def interrupted(
    folder: Path,
    args: list[str],
    when: Callable[[int, Path], bool],
    entry: tuple[str, ...] = ("-m", "indexer"),
    env: dict[str, str] | None = None,
) -> str:
    """Start `dtindex ARGS` (Python with `entry`) in a session of its own, send SIGINT
    to its group once `when` holds, and check how it ended; its stderr."""
    env = {**os.environ, **(env or {}), "DTINDEX_CONFIG": str(folder / "deeptagger.toml")}
    env |= {"DTINDEX_DB": str(folder / "index.sqlite"), "XDG_CACHE_HOME": str(folder / "cache")}
    errors = folder / "stderr"
    with errors.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, *entry, *args],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not when(process.pid, folder):
            assert process.poll() is None, f"ended first: {errors.read_text()}"
            assert time.monotonic() < deadline, "the moment never came"
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.002)  # wakes at once if the process ends
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    said = errors.read_text()
    assert code == 130, said
    assert "interrupted" in said.splitlines()[-1], said
    assert "Traceback" not in said and "Exception ignored" not in said, said
    return said


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = slow_model(tmp_path / "models")
    (tmp_path / "deeptagger.toml").write_text(f'[models.slow]\nmodel = "{model}"\n')
    make_gallery(tmp_path / "gallery", 40)
    return tmp_path


@pytest.mark.parametrize(
    "when",
    [
        mapped("_multiarray_umath"),  # importing the command (NumPy, SQLAlchemy)
        mapped("onnxruntime_pybind11_state"),  # importing ONNX Runtime
        index_opened,
        decoder_started,
        tagging,
    ],
    ids=["importing", "importing-onnxruntime", "index-opened", "decoders-starting", "tagging"],
)
def test_ctrl_c_during_a_scan(folder: Path, when: Callable[[int, Path], bool]) -> None:
    interrupted(folder, ["scan", "-b", "2", "gallery"], when)


@pytest.mark.parametrize(
    "when", [mapped("onnxruntime_pybind11_state"), decoder_started], ids=["importing", "decoders"]
)
def test_ctrl_c_during_tag(folder: Path, when: Callable[[int, Path], bool]) -> None:
    interrupted(folder, ["tag", "-b", "2", "slow", "gallery"], when)


# Put on PYTHONPATH by the test: the first import of a dtindex module that the command's
# entry makes waits for a signal (Python's own handler raises KeyboardInterrupt in there).
GATE = """
import os, signal, sys

class Gate:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("indexer.") and name != "indexer.__main__":
            sys.meta_path.remove(self)
            open(os.environ["DTINDEX_TEST_GATE"], "w").close()
            signal.pause()
        return None

if os.environ.get("DTINDEX_TEST_GATE"):
    sys.meta_path.insert(0, Gate())
"""


def console_script() -> tuple[str, ...]:
    """What the `dtindex` script pip makes from pyproject's entry point runs."""
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    module, function = pyproject["project"]["scripts"]["dtindex"].split(":")
    return ("-c", f"import sys; from {module} import {function}; sys.exit({function}())")


@pytest.mark.parametrize("entry", ["module", "script"])
def test_ctrl_c_in_the_first_import_is_no_traceback(tmp_path: Path, entry: str) -> None:
    """SIGINT at the first import of a dtindex module (before any of the command's code
    could catch it): `dtindex: interrupted`, exit 130, no traceback; for `python -m
    indexer` and for the console script."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(GATE)
    gate = tmp_path / "gate"
    path = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, "DTINDEX_TEST_GATE": str(gate)}
    command = ("-m", "indexer") if entry == "module" else console_script()
    interrupted(tmp_path, ["status"], lambda _pid, _folder: gate.exists(), command, env)


def test_a_reader_that_goes_away_ends_tag_quietly(tmp_path: Path) -> None:
    """`dtindex tag ... | head -1`: the next write after the reader left hits a closed
    pipe; the run ends there, exit 0, nothing on stderr."""
    env = {**os.environ, "DTINDEX_CONFIG": os.devnull, "XDG_CACHE_HOME": str(tmp_path / "c")}
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "tag", "--pipe", "palette"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        red = bytes(picture(tmp_path / "red.png", (250, 0, 0)))
        process.stdin.write(red + b"\n")
        process.stdin.flush()
        assert process.stdout.readline().startswith(red + b"\t")
        process.stdout.close()  # as head does once it has its lines
        process.stdin.write(b"%s\n" % bytes(picture(tmp_path / "grey.png", (90, 90, 90))))
        process.stdin.close()
        assert process.wait(60) == 0
        assert process.stderr is not None and process.stderr.read() == b""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_whose_parent_goes_before_sending_its_program_exits_quietly() -> None:
    """Ctrl-C to the whole group can stop the parent right after it started a worker and
    before the worker was sent what to run (found by `test_ctrl_c_during_tag` on CI): the
    worker, its stop signals blocked, then reads the end of its pipe. It must leave
    without a word on the stderr it shares with the parent (the last line there is
    `dtindex: interrupted`), not with an EOFError traceback."""
    import multiprocessing

    from indexer.imaging import spawning

    ours, theirs = multiprocessing.Pipe()
    ours.close()  # the parent is gone
    try:
        done = subprocess.run(
            [sys.executable, "-c", spawning._BOOT, str(theirs.fileno()), "-1"],
            pass_fds=(theirs.fileno(),),
            capture_output=True,
            timeout=60,
        )
    finally:
        theirs.close()
    assert (done.returncode, done.stderr) == (0, b"")
