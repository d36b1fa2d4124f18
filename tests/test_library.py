"""`import indexer` as a library, and a start-up that imports nothing heavy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import hooks_env, picture, wait_gone, write_model

HEAVY = ("sqlalchemy", "alembic", "onnxruntime", "numpy", "PIL")


def imported_by(*argv: str) -> set[str]:
    """Top-level modules `python -X importtime -m indexer ARGV` imports."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "indexer", *argv],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()]
    return {row.split(".")[0] for row in rows if row and not row.startswith("import time")}


def test_version_and_help_import_no_heavy_library() -> None:
    for argv in (["--version"], ["--help"]):
        loaded = imported_by(*argv)
        assert "indexer" in loaded  # the check sees imports
        assert not loaded & set(HEAVY), (argv, sorted(loaded & set(HEAVY)))


def test_import_indexer_is_cheap() -> None:
    code = "import sys, indexer; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "'indexer'" in loaded and not any(f"'{name}'" in loaded for name in HEAVY)


def test_load_model_tags_exactly_as_dtindex_tag(cli, tmp_path: Path) -> None:
    import indexer

    (model, *names), out = tagged_by_dtindex(cli, tmp_path)
    pictures = [Path(name) for name in names]
    with indexer.load_model(model) as loaded:
        found = list(loaded.tag(pictures, batch=2))
        assert [p for p, _ in loaded.failures] == [str(pictures[2])]
    lines = [f"{path}\t{tag}\t{score:.2f}\n" for path, tags in found for tag, score in tags.items()]
    assert "".join(lines).encode() == out
    assert [Path(p).name for p, _ in found] == ["a.png", "b.jpg", "c.png"]


def test_scan_from_python_counts_as_scan_json(cli, tmp_path: Path, mean_model: Path) -> None:
    import indexer

    config = tmp_path / "deeptagger.toml"
    config.write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    for i in range(3):
        picture(tmp_path / "g" / f"{i}.png", (i * 60, 10, 10))
    counts = indexer.scan(["g"], db=tmp_path / "lib.sqlite", config=config)
    code, out, err = cli("--db", str(tmp_path / "cli.sqlite"), "scan", "--json", "g")
    assert code == 0, err
    assert isinstance(counts, indexer.Counts)  # a typed record, not a dict
    assert counts.as_dict() == json.loads(out)
    assert counts.tagged == 3


def test_scan_from_python_expands_a_home_folder(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's own `indexer.scan(["~/gallery"], ...)`: `~` is the user's home."""
    import indexer

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = tmp_path / "home" / "deeptagger.toml"
    picture(tmp_path / "home" / "gallery" / "a.png", (10, 20, 30))
    config.write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    counts = indexer.scan(["~/gallery"], db="~/index.sqlite", config="~/deeptagger.toml")
    assert counts.tagged == 1
    assert (tmp_path / "home" / "index.sqlite").exists()


def test_the_library_keeps_the_clis_caches(cli, tmp_path: Path, mean_model: Path) -> None:
    """load_model and scan keep the .onnx digests (and int8/fp16 copies, TensorRT engines)
    in dtindex's cache folder, as the CLI does: a start does not read the model again."""
    import indexer

    cache = tmp_path / "xdg-cache" / "dtindex"  # the cli fixture's XDG_CACHE_HOME
    indexer.load_model(mean_model).close()
    kept = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    assert kept
    shutil.rmtree(cache)
    config = tmp_path / "deeptagger.toml"
    config.write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    picture(tmp_path / "g" / "a.png")
    indexer.scan(["g"], db=tmp_path / "lib.sqlite", config=config)
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == kept
    shutil.rmtree(cache)
    code, _, err = cli("tag", str(mean_model), "g/a.png")
    assert code == 0, err
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == kept


def test_failures_are_each_calls_own(cli, tmp_path: Path, mean_model: Path) -> None:
    import indexer

    good = picture(tmp_path / "good.png")
    with indexer.load_model(mean_model) as model:
        assert len(list(model.tag([good, tmp_path / "gone.png"]))) == 1
        assert [p for p, _ in model.failures] == [str(tmp_path / "gone.png")]
        assert len(list(model.tag([good]))) == 1
        assert model.failures == []
        list(model.tag([tmp_path / "lost.png"]))
        assert [p for p, _ in model.failures] == [str(tmp_path / "lost.png")]


# A program that keeps the model in a variable and never closes it.
TAGGING = """\
import sys
import indexer

model = indexer.load_model(sys.argv[1])
for path, tags in model.tag(sys.argv[2:], batch=2):
    for tag, score in tags.items():
        print(f"{path}\\t{tag}\\t{score:.2f}")
"""
GUARDED = "def main():\n" + "".join(f"    {line}\n" for line in TAGGING.splitlines())
GUARDED += 'if __name__ == "__main__":\n    main()\n'


def tagged_by_dtindex(cli, tmp_path: Path) -> tuple[list[str], bytes]:
    """A model and pictures (one missing), and what `dtindex tag` prints for them."""
    model = write_model(tmp_path / "models", "probe", positions=[0, 1, 2, 5, 40], size=8)
    model.write_text(model.read_text() + "normalize = true\n")
    pictures = [
        picture(tmp_path / "p" / "a.png", (200, 100, 50), size=(30, 10), old=False),
        picture(tmp_path / "p" / "b.jpg", (10, 220, 130), size=(9, 16), fmt="JPEG"),
        tmp_path / "p" / "missing.png",
        picture(tmp_path / "p" / "c.png", (90, 90, 250), size=(8, 8)),
    ]
    code, out, _ = cli("tag", "-b", "2", str(model), *map(str, pictures))
    assert code == 1  # the missing picture
    return [str(model), *map(str, pictures)], out


@pytest.mark.parametrize("how", ["script", "guarded script", "-c", "stdin"])
def test_the_library_works_from_any_kind_of_main_program(cli, tmp_path: Path, how: str) -> None:
    """Without a `__main__` guard, from `python -c`, from standard input: the decoders
    never run the caller's program, the model kept in a variable does not hold the exit,
    and its shared memory is gone (made and unlinked: no resource tracker warning)."""
    args, expected = tagged_by_dtindex(cli, tmp_path)
    script = tmp_path / "tagging.py"
    script.write_text(GUARDED if how == "guarded script" else TAGGING)
    argv = {"-c": ["-c", TAGGING], "stdin": ["-"]}.get(how, [str(script)])
    log = tmp_path / "shared-memory.log"
    run = subprocess.run(
        [sys.executable, *argv, *args],
        input=TAGGING.encode() if how == "stdin" else None,
        capture_output=True,
        timeout=60,
        env={**os.environ, **hooks_env(DTINDEX_TEST_SHM_LOG=str(log))},
    )
    err = run.stderr.decode()
    assert run.returncode == 0, err
    assert run.stdout == expected
    assert "leaked" not in err and "Error" not in err, err
    made = log.read_text().split()
    assert made  # the check sees the rings
    assert not [name for name in made if Path("/dev/shm", name).exists()]


def test_the_library_works_in_a_jupyter_kernel(cli, tmp_path: Path) -> None:
    """The same program in a real IPython kernel gives the results `dtindex tag` prints,
    and once the kernel is shut down (the model still in its variable) no shared memory is
    left. The shutdown is not a clean exit: ipykernel SIGTERMs its children and waits for
    them, and multiprocessing's resource tracker ignores SIGTERM, so jupyter_client ends
    the kernel; the tracker then unlinks the rings."""
    if os.environ.get("CI"):  # CI installs the test extra: a missing kernel is a failure there
        from jupyter_client.manager import KernelManager
    else:
        pytest.importorskip("ipykernel", reason="pip install 'dtindex[test]'")
        KernelManager = pytest.importorskip("jupyter_client.manager").KernelManager
    args, expected = tagged_by_dtindex(cli, tmp_path)
    log = tmp_path / "shared-memory.log"
    kernel = KernelManager(kernel_name="python3")
    with (tmp_path / "kernel-stderr.txt").open("w") as stderr:
        env = {**os.environ, **hooks_env(DTINDEX_TEST_SHM_LOG=str(log))}
        kernel.start_kernel(env=env, cwd=str(tmp_path), stderr=stderr)
    printed: list[str] = []

    def output(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            printed.append(message["content"]["text"])

    client = kernel.client()
    helpers: list[int] = []  # the kernel's children: its resource tracker unlinks last
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        code = f"import sys\nsys.argv = {['kernel', *args]!r}\n{TAGGING}"
        reply = client.execute_interactive(code, timeout=60, output_hook=output)
        assert reply["content"]["status"] == "ok", reply["content"]
        helpers = children(kernel.provisioner.process.pid)
    finally:
        client.stop_channels()
        kernel.shutdown_kernel()
    assert "".join(printed).encode() == expected
    made = log.read_text().split()
    assert made
    wait_gone(helpers, 30)
    assert not [name for name in made if Path("/dev/shm", name).exists()]


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for task in tasks for c in (task / "children").read_text().split()]
