"""An index that cannot be written: reading commands read it, writers say why they cannot.

Root writes through permissions, so as root the folder (or the file) is made read-only
by a read-only bind mount in a mount namespace of the test's own; otherwise by chmod.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import picture

READING = [
    ["status"],
    ["models"],
    ["export", "--model", "palette"],
    ["search", "red_theme"],
    ["show", "gallery/red.png"],
]
LEFT_IN_WAL = (  # a writer that dies with a commit still in the -wal file
    "import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
    "db.execute('PRAGMA wal_autocheckpoint = 0'); db.execute('UPDATE roots SET scanned_ns = 0'); "
    "db.commit(); os._exit(0)"
)


def dtindex(*args: str) -> list[str]:
    return [sys.executable, "-m", "indexer", *args]


def as_read_only(
    tmp_path: Path, target: Path, commands: list[list[str]]
) -> list[tuple[int, str, str]]:
    """Each command's exit status, stdout and stderr, run with `target` read-only."""
    env = {
        **os.environ,
        "DTINDEX_CONFIG": os.devnull,
        "DTINDEX_DB": str(tmp_path / "idx" / "index.sqlite"),
    }
    results = tmp_path / "results"
    results.mkdir()
    runs = "".join(
        f"{shlex.join(command)} > {results / str(i)}.out 2> {results / str(i)}.err; "
        f"echo $? > {results / str(i)}.rc\n"
        for i, command in enumerate(commands)
    )
    if os.geteuid() == 0:
        t = shlex.quote(str(target))
        script = f"mount --bind {t} {t} && mount -o remount,bind,ro {t} || exit 99\n{runs}"
        done = subprocess.run(["unshare", "--mount", "sh", "-c", script], cwd=tmp_path, env=env)
        if done.returncode == 99:
            pytest.skip("root here cannot make a read-only bind mount (no CAP_SYS_ADMIN)")
    else:
        mode = target.stat().st_mode
        target.chmod(mode & ~0o222)
        try:
            subprocess.run(["sh", "-c", runs], cwd=tmp_path, env=env, check=True)
        finally:
            target.chmod(mode)
    return [
        (
            int((results / f"{i}.rc").read_text()),
            (results / f"{i}.out").read_text(),
            (results / f"{i}.err").read_text(),
        )
        for i in range(len(commands))
    ]


@pytest.fixture
def index(cli, tmp_path: Path) -> Path:
    if os.geteuid() == 0 and subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        pytest.skip("root here cannot use a mount namespace (unshare --mount)")
    picture(tmp_path / "gallery" / "red.png", (250, 0, 0))
    picture(tmp_path / "gallery" / "grey.png", (128, 128, 128))
    code, _, err = cli("scan", "gallery", "--db", "idx/index.sqlite")
    assert code == 0, err
    return tmp_path / "idx" / "index.sqlite"


def expected(cli, db: Path) -> list[str]:
    """What the reading commands print while the index can be written."""
    outputs = []
    for command in READING:  # with the config the read-only runs are given
        code, out, err = cli("--config", os.devnull, *command, "--db", str(db))
        assert code == 0, err
        outputs.append(out.decode())
    return outputs


def test_reading_commands_read_an_index_in_a_read_only_folder(
    cli, tmp_path: Path, index: Path
) -> None:
    before = expected(cli, index)
    listed = sorted(index.parent.iterdir())
    scan = ["scan", "gallery"]
    results = as_read_only(tmp_path, index.parent, [dtindex(*c) for c in [*READING, scan]])
    for (code, out, err), wanted in zip(results, before, strict=False):
        assert code == 0 and out == wanted, err
        assert err == ""
    code, out, err = results[-1]
    assert code == 1 and out == ""
    assert (
        f"{index}: its folder {index.parent} is read-only" in err
        or f"{index}: the index is read-only" in err
    )
    assert "export, search, show, status and models can still read it" in err
    assert "Traceback" not in err
    assert sorted(index.parent.iterdir()) == listed


def test_changes_left_in_a_wal_file_are_named_not_read(cli, tmp_path: Path, index: Path) -> None:
    before = expected(cli, index)
    subprocess.run([sys.executable, "-c", LEFT_IN_WAL, str(index)], check=True)
    assert (index.parent / "index.sqlite-wal").stat().st_size
    ((code, out, err),) = as_read_only(tmp_path, index.parent, [dtindex("status")])
    assert code == 0 and out == before[0]  # the file as it is: the root's scan time unchanged
    assert "the last changes are in index.sqlite-wal" in err


def test_a_read_only_index_file_in_a_writable_folder(cli, tmp_path: Path, index: Path) -> None:
    before = expected(cli, index)
    results = as_read_only(tmp_path, index, [dtindex(*c) for c in [*READING, ["scan", "gallery"]]])
    assert [(code, out) for code, out, _ in results[:-1]] == [(0, text) for text in before]
    code, _, err = results[-1]
    assert code == 1 and f"{index}: the index is read-only" in err
