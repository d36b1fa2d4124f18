"""Shared test helpers: tiny ONNX models whose outputs are predictable, generated pictures."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pgserver
import pytest
from onnx import TensorProto, helper, numpy_helper, save
from PIL import Image

OLD = 1_600_000_000  # an mtime far in the past, so files are not racily clean


def save_graph(
    folder: Path,
    stem: str,
    nodes: list[Any],
    inits: list[Any],
    dims: Sequence[int | str],
    tags: Sequence[str],
    model_text: str,
) -> Path:
    """Write stem.onnx (opset 18, input `input`, output `scores`), stem.tags, stem.model."""
    graph = helper.make_graph(
        nodes,
        stem,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [dims[0], len(tags)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    save(model, str(folder / f"{stem}.onnx"))
    (folder / f"{stem}.tags").write_text("\n".join(tags) + "\n")
    (folder / f"{stem}.model").write_text(model_text)
    return folder / f"{stem}.model"


def write_model(
    folder: Path,
    stem: str,
    *,
    shape: str = "nhwc",
    size: int = 8,
    fixed_size: bool = True,
    batch: int | None = None,
    positions: Sequence[int] = (),
    settings: str = "",
    mean: bool = False,
) -> Path:
    """Write stem.onnx/.tags/.model; outputs are chosen input values or channel means.

    With `positions`, output k is the flattened input value at positions[k] (a Gather), so
    a test reads the prepared tensor directly. With `mean`, outputs are the three channel
    means in the layout's channel order (tags c0, c1, c2).
    """
    dims: list[int | str] = [batch if batch else "batch"]
    hw: list[int | str] = [size, size] if fixed_size else ["h", "w"]
    dims += [3, *hw] if shape == "nchw" else [*hw, 3]
    nodes, inits = [], []
    if mean:
        axes = [2, 3] if shape == "nchw" else [1, 2]
        inits.append(numpy_helper.from_array(np.array(axes, np.int64), "axes"))
        nodes.append(helper.make_node("ReduceMean", ["input", "axes"], ["scores"], keepdims=0))
        count = 3
    else:
        inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), "flat"))
        inits.append(numpy_helper.from_array(np.array(positions, np.int64), "pos"))
        nodes.append(helper.make_node("Reshape", ["input", "flat"], ["flattened"]))
        nodes.append(helper.make_node("Gather", ["flattened", "pos"], ["scores"], axis=1))
        count = len(positions)
    names = ["c0", "c1", "c2"] if mean else [f"p{k}" for k in range(count)]
    text = f"name = {stem}\nshape = {shape}\n" + settings
    if not fixed_size:
        text += f"size = {size}\n"
    return save_graph(folder, stem, nodes, inits, dims, names, text)


def picture(
    path: Path,
    colour: tuple[int, int, int] = (255, 0, 0),
    size: tuple[int, int] = (16, 16),
    fmt: str | None = None,
    old: bool = True,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    if old:
        os.utime(path, ns=(OLD * 10**9, OLD * 10**9))
    return path


def age(*paths: Path) -> None:
    """Set mtimes into the past so a rescan trusts the stat (no racy-clean recheck)."""
    for path in paths:
        os.utime(path, ns=(OLD * 10**9, OLD * 10**9))


def slow_model(folder: Path, rounds: int = 40) -> Path:
    """Channel means (tags c0..c2) plus enough dense work to make each picture take a while."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat"),
        numpy_helper.from_array((rng.standard_normal((192, 1024)) * 0.05).astype(np.float32), "w0"),
        numpy_helper.from_array((rng.standard_normal((1024, 1024)) * 0.03).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["means"], keepdims=0),
        helper.make_node("Reshape", ["input", "flat"], ["x"]),
        helper.make_node("MatMul", ["x", "w0"], ["h0"]),
    ]
    for k in range(rounds):
        nodes.append(helper.make_node("MatMul", [f"h{k}", "w"], [f"m{k}"]))
        nodes.append(helper.make_node("Tanh", [f"m{k}"], [f"h{k + 1}"]))
    nodes += [
        helper.make_node("ReduceMean", [f"h{rounds}", "one"], ["r"], keepdims=1),
        helper.make_node("Mul", ["r", "zero"], ["nothing"]),
        helper.make_node("Add", ["means", "nothing"], ["scores"]),
    ]
    dims = ["batch", 8, 8, 3]
    return save_graph(
        folder,
        "slow",
        nodes,
        inits,
        dims,
        ["c0", "c1", "c2"],
        "name = slow\nnormalize = true\npad = stretch\n",
    )


def make_gallery(folder: Path, count: int, blue: int = 100) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        path = folder / f"{i:03}.png"
        Image.new("RGB", (8, 8), (i * 3 % 256, (i * 7) % 256, blue)).save(path)
        os.utime(path, ns=(OLD * 10**9, OLD * 10**9))
    for i in range(0, count, 10):  # duplicates share a content
        (folder / f"dup{i:03}.png").write_bytes((folder / f"{i:03}.png").read_bytes())
        os.utime(folder / f"dup{i:03}.png", ns=(OLD * 10**9, OLD * 10**9))


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


@pytest.fixture(scope="session")
def slow_gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bytes]]:
    """A folder holding `gallery` (60 pictures and 6 copies), `deeptagger.toml` naming a
    model `slow` slow enough to be hit mid-scan, and what a clean scan of the gallery
    exports. Made once for the tests that kill scans (each clean scan costs seconds): they
    read the gallery and keep their indexes elsewhere, and it must come out unchanged."""
    home = tmp_path_factory.mktemp("slow")
    model = slow_model(home / "models", rounds=400)
    (home / "deeptagger.toml").write_text(f'[models.slow]\nmodel = "{model}"\n')
    make_gallery(home / "gallery", 60)
    env = {
        **os.environ,
        "DTINDEX_DB": str(home / "clean.sqlite"),
        "DTINDEX_CONFIG": str(home / "deeptagger.toml"),
    }
    command = [sys.executable, "-m", "indexer"]
    done = subprocess.run([*command, "scan", "-b", "2", "gallery"], cwd=home, env=env,
                          capture_output=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = subprocess.run([*command, "export", "--model", "slow"], cwd=home, env=env,
                              capture_output=True, check=True, timeout=120).stdout  # fmt: skip
    assert len(expected.splitlines()) > 60
    before = _listing(home / "gallery")
    yield home, expected
    assert _listing(home / "gallery") == before, "a test changed the shared gallery"


# A decoder meeting these bytes crashes, hangs, where the test injects them (`inject_faults`).
FAULTS = "CRASH-THIS-DECODER,HANG-THIS-DECODER"
# Holds the sitecustomize.py that every process started with `hooks_env` imports.
HOOKS = Path(__file__).parent / "hooks"


def hooks_env(**variables: str) -> dict[str, str]:
    """`variables` and a PYTHONPATH that puts tests/hooks first (see its sitecustomize)."""
    path = [str(HOOKS), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**variables, "PYTHONPATH": os.pathsep.join(path)}


def fault_env(markers: str = FAULTS) -> dict[str, str]:
    """The environment under which a decoder that reads a file holding the first marker
    crashes (SIGSEGV) and one holding the second hangs: the faults ship in no release."""
    return hooks_env(DTINDEX_TEST_FAULTS=markers)


def workers_of(pid: int) -> list[int]:
    """dtindex's worker processes (decoders, the score writer) `pid` started, still running.

    Every process's parent is read from /proc/N/stat: /proc/PID/task/TID/children may
    miss a child while others come and go (proc(5): reliable only with them stopped),
    and a test that waited on what it listed then found one more (a flake under load)."""
    from indexer.imaging.spawning import MARK

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and MARK.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], timeout: float) -> None:
    """Wait until each of `pids` has exited (a pidfd becomes readable then; nothing is
    reaped, so its parent still collects it), or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    """Poll `condition` until it holds (deadline), waiting on the process between looks."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.01)


def inject_faults(monkeypatch: pytest.MonkeyPatch, markers: str = FAULTS) -> None:
    """The decoders this test starts from now on crash and hang on `markers`."""
    for name, value in fault_env(markers).items():
        monkeypatch.setenv(name, value)


def fault_pictures(folder: Path) -> None:
    """crash.png and hang.png: valid PNGs ending in the markers, written just now."""
    for name, marker in zip(("crash.png", "hang.png"), FAULTS.split(","), strict=True):
        picture(folder / name, (1, 2, 3))
        with open(folder / name, "ab") as handle:
            handle.write(marker.encode())  # trailing bytes: still a valid PNG


@pytest.fixture
def mean_model(tmp_path: Path) -> Path:
    """An nhwc rgb model giving the mean of each channel scaled to 0..1."""
    return write_model(tmp_path / "models", "means", mean=True, settings="normalize = true\n")


def run_cli(
    argv: Sequence[str], capsysbinary: pytest.CaptureFixture[bytes]
) -> tuple[int, bytes, str]:
    from indexer.cli.main import main

    code = main(list(argv))
    out, err = capsysbinary.readouterr()
    return code, out, err.decode("utf-8", "replace")


# Runs a test (of `index_db`, or of `cli`) on an SQLite file and on a PostgreSQL database.
BOTH = pytest.mark.parametrize("index_db", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgserver.Cluster]:
    """A private PostgreSQL server for the session; skipped without one, failed under CI."""
    folder = pgserver.binaries()
    if folder is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl) here; .ci/run installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = pgserver.start(folder)
    yield cluster
    pgserver.stop(cluster)


@pytest.fixture
def index_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the test's index lives: `index.sqlite` in tmp_path, or with `BOTH` also a
    fresh PostgreSQL database's URL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return str(tmp_path / "index.sqlite")
    return pgserver.new_database(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def cli(
    capsysbinary: pytest.CaptureFixture[bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    index_db: str,
) -> Callable[..., tuple[int, bytes, str]]:
    """Run `dtindex` in-process with a private database and no user config."""
    monkeypatch.setenv("DTINDEX_DB", index_db)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("DTINDEX_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def call(*argv: str) -> tuple[int, bytes, str]:
        return run_cli(argv, capsysbinary)

    return call


def export(cli: Callable[..., tuple[int, bytes, str]], *args: str, model: str = "means") -> bytes:
    """`dtindex export --model MODEL ARGS` through the `cli` fixture; it must exit 0."""
    code, out, err = cli("export", "--model", model, *args)
    assert code == 0, err
    return out


def clean_export(
    cli: Callable[..., tuple[int, bytes, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    roots: Sequence[str],
    *args: str,
    model: str = "means",
) -> bytes:
    """What a scan of `roots`, as they are now, into a fresh database exports (export
    ARGS); the `cli` fixture's own index is left as it was."""
    fresh = tmp_path / f"clean-{len(list(tmp_path.glob('clean-*')))}.sqlite"
    index = os.environ["DTINDEX_DB"]
    monkeypatch.setenv("DTINDEX_DB", str(fresh))
    try:
        code, _, err = cli("scan", *roots)
        assert code == 0, err
        return export(cli, *args, model=model)
    finally:
        monkeypatch.setenv("DTINDEX_DB", index)
