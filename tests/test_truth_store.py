"""The index tells the truth after faults, end to end through the `dtindex` command.

After each fault (a killed writer whose pid is reused, someone else's database, a
decoder that hangs, a full disk, a file rewritten within the clock's resolution) the
export equals what a clean scan of the same gallery into a fresh database exports, and
no command exits 0 having done less. Real SQLite, ONNX Runtime, signals and processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    FAULTS,
    age,
    fault_env,
    inject_faults,
    make_gallery,
    picture,
    wait_for,
    write_model,
)
from PIL import Image

CRASH, HANG = (marker.encode() for marker in FAULTS.split(","))
HOST = socket.gethostname()
PID_1 = f"{HOST}:1:deadbeef0000"  # pid 1 always exists: a pid check calls it alive
FAR_FUTURE_NS = 2**62  # a lease that never runs out during the test


# -- running dtindex ---------------------------------------------------------------
def configure(tmp_path: Path, models: dict[str, Path], extra: str = "") -> None:
    tables = "".join(f'[models.{name}]\nmodel = "{path}"\n' for name, path in models.items())
    (tmp_path / "deeptagger.toml").write_text(extra + tables)


def start(
    tmp_path: Path,
    db: str,
    *args: str,
    faults: str | None = None,
    prefix: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`dtindex ARGS` in a session of its own, run in tmp_path (paths are relative to it)."""
    env = {
        **os.environ,
        "DTINDEX_DB": db,
        "DTINDEX_CONFIG": "deeptagger.toml",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
    }
    env.pop("DTINDEX_TEST_FAULTS", None)
    if faults:
        env.update(fault_env(faults))
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "indexer", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def dtindex(
    tmp_path: Path, db: str, *args: str, faults: str | None = None
) -> tuple[int, bytes, str]:
    process = start(tmp_path, db, *args, faults=faults)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, out, err.decode("utf-8", "replace")


def scan_json(tmp_path: Path, db: str, *args: str, code: int = 0, **kw: str) -> dict[str, int]:
    exit_code, out, err = dtindex(tmp_path, db, "scan", "--json", *args, **kw)
    assert exit_code == code, err
    if code == 1:
        assert "the index is incomplete" in err, err
    return json.loads(out)


def export(tmp_path: Path, db: str, model: str) -> bytes:
    code, out, err = dtindex(tmp_path, db, "export", "--model", model)
    assert code == 0, err
    return out


def clean_export(
    tmp_path: Path, gallery: str, model: str, faults: str | None = None, code: int = 0
) -> bytes:
    """What a clean scan of the gallery, as it is now, into a fresh database exports."""
    db = "clean.sqlite"
    assert not (tmp_path / db).exists()
    scan_json(tmp_path, db, gallery, code=code, faults=faults)
    out = export(tmp_path, db, model)
    assert out.count(b"\n") >= 3, out
    return out


def query(db: Path, sql: str) -> list[tuple]:
    """Read the database as another process would (read-only, never creating it)."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)
        ) as c:
            return c.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet


def count(db: Path, sql: str) -> int:
    rows = query(db, sql)
    return int(rows[0][0]) if rows else 0


def session_alive(sid: int) -> bool:
    """Whether a process of session `sid` still runs (zombies have closed their files)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            return True
    return False


def kill_session(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started, and wait until none runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    deadline = time.monotonic() + 30
    while session_alive(process.pid):
        assert time.monotonic() < deadline, "killed processes did not exit"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.01)


def mark(path: Path, marker: bytes) -> Path:
    """Trailing bytes after the picture: still a valid PNG, but the fault injector sees it."""
    with open(path, "ab") as handle:
        handle.write(marker)
    return path


def fresh_pictures(folder: Path, count_: int, seed: int) -> list[Path]:
    """Pictures written now (mtime: now), noise so no two are alike."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count_):
        path = folder / f"fresh{seed}-{i:02}.png"
        Image.fromarray(rng.integers(10, 250, (8, 8, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A small file system of its own at `folder` (root only: skips elsewhere)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def fill(disk: Path) -> None:
    """Write a file until the file system has not one byte left."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        for chunk in (1 << 16, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * chunk)


# -- 1. claims of dead processes, even when their pid lives on -------------------------
def test_claims_of_a_dead_owner_whose_pid_is_alive_are_taken_over(
    tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, {"means": mean_model})
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 12)  # aged pictures, duplicates included
    fresh_pictures(gallery, 4, seed=1)
    # Pictures whose decoder crashes in the first scan: hashed, not tagged, retried later.
    # Aged ones are tagged by the pending pass; fresh ones may be read again (racy mtime).
    aged_crash = [picture(gallery / f"crash-aged{i}.png", (200, 30 * i, 9)) for i in range(2)]
    for path in aged_crash:
        age(mark(path, CRASH))
    for i in range(2):
        mark(picture(gallery / f"crash-fresh{i}.png", (9, 30 * i, 200), old=False), CRASH)

    code, out, err = dtindex(tmp_path, "index.sqlite", "scan", "--json", "gallery", faults=FAULTS)
    assert code == 1, err
    first = json.loads(out)
    assert (first["failed"], first["to_retry"]) == (4, 4), err  # once seen 5: why, if again
    db = tmp_path / "index.sqlite"
    folder = tmp_path / "index.sqlite.claims"

    live_token = f"{HOST}:1:a11ve0000000"  # pid 1 too, but its lock is held: alive
    gone_token = f"{HOST}:1:0badc0ffee00"  # its lock file was left behind, unlocked
    (folder / f"{gone_token}.lock").write_bytes(b"")
    live_fd = os.open(folder / f"{live_token}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(live_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
            query_version = "SELECT id FROM model_versions WHERE model = 'means'"
            (version,) = conn.execute(query_version).fetchone()
            unsettled = [
                c
                for (c,) in conn.execute(
                    "SELECT id FROM contents WHERE id NOT IN "
                    "(SELECT content_id FROM taggings WHERE status = 'done')"
                )
            ]
            settled = [
                c for (c,) in conn.execute("SELECT content_id FROM taggings WHERE status = 'done'")
            ]
            assert len(unsettled) == 4 and len(settled) >= 2
            rows = [(version, c, PID_1, FAR_FUTURE_NS) for c in unsettled]
            rows += [(version, settled[0], gone_token, FAR_FUTURE_NS)]
            rows += [(version, settled[1], live_token, FAR_FUTURE_NS)]
            conn.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", rows)
            conn.commit()

        code, out, err = dtindex(tmp_path, "index.sqlite", "scan", "--json", "gallery")
        assert code == 0, err
        result = json.loads(out)
        assert result["tagged"] == 4, (result, err)
        remaining = query(db, "SELECT content_id, owner FROM claims")
        assert remaining == [(settled[1], live_token)]  # a live owner keeps its claim
        assert "took over 5 claims" in err, err  # the dead ones, reaped at the start
        assert not (folder / f"{gone_token}.lock").exists()
    finally:
        os.close(live_fd)
    assert export(tmp_path, "index.sqlite", "means") == clean_export(tmp_path, "gallery", "means")


def test_a_claim_whose_owner_died_during_the_scan_is_taken_over(
    tmp_path: Path, mean_model: Path
) -> None:
    """Claims of a pid-1 owner without a lock appear after the scan reaped the dead ones:
    each is taken over when the scan comes to its picture, not left for an hour."""
    configure(tmp_path, {"means": mean_model}, "decode_timeout = 4\ndecoders = 2\n")
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 6)
    for i in range(3):  # aged: the next scan tags them in its pending pass, after the reads
        age(mark(picture(gallery / f"c-crash{i}.png", (200, 30 * i, 9)), CRASH))
    first = scan_json(tmp_path, "index.sqlite", "gallery", code=1, faults=FAULTS)
    assert (first["tagged"], first["to_retry"]) == (6, 3), first
    db = tmp_path / "index.sqlite"

    picture(gallery / "a-new.png", (77, 66, 55), old=False)
    age(mark(picture(gallery / "b-hang.png", (1, 2, 3)), HANG))
    # The crash marker is harmless now; the scan waits on b-hang.png after a-new.png.
    scan = start(
        tmp_path,
        "index.sqlite",
        "scan",
        "--json",
        "gallery",
        faults="UNUSED-MARKER," + HANG.decode(),
    )
    try:
        # Looked files are recorded in groups: b-hang.png's row may come with a-new.png's.
        new = "SELECT COUNT(*) FROM files WHERE CAST(path AS TEXT) LIKE '%a-new.png'"
        wait_for(lambda: scan.poll() is not None or count(db, new) == 1, scan)
        assert scan.poll() is None, "the scan ended before recording a-new.png"
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO claims SELECT t.model_version_id, t.content_id, ?, ? "
                "FROM taggings t WHERE t.status = 'failed'",
                (PID_1, FAR_FUTURE_NS),
            )
            conn.commit()
        assert count(db, f"SELECT COUNT(*) FROM claims WHERE owner = '{PID_1}'") == 3
        timed_out = "SELECT COUNT(*) FROM taggings WHERE kind = 'timeout'"
        assert count(db, timed_out) == 0, "b-hang.png timed out before the claims were made"
        out, err = scan.communicate(timeout=60)
    finally:
        kill_session(scan)
    assert scan.returncode == 1, err  # b-hang.png timed out: retried by the next scan
    result = json.loads(out)
    assert (result["tagged"], result["to_retry"]) == (4, 1), (result, err)
    assert query(db, "SELECT COUNT(*) FROM claims") == [(0,)]

    final = scan_json(tmp_path, "index.sqlite", "gallery")
    assert final["tagged"] == 1, final
    assert export(tmp_path, "index.sqlite", "means") == clean_export(tmp_path, "gallery", "means")


def test_scan_killed_as_pid_1_of_a_pid_namespace_is_resumed(
    tmp_path: Path, mean_model: Path
) -> None:
    try:
        unshare = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    except FileNotFoundError:
        pytest.skip("no unshare command here")
    if unshare.returncode != 0:
        pytest.skip(f"unshare --pid --fork is not permitted here: {unshare.stderr.decode()}")
    # A picture whose decoder hangs keeps the scan from finishing (until decode_timeout),
    # so the kill lands while the scan holds its claim however fast the model is: no model
    # slow enough to be caught mid-scan (whose pictures cost seconds twice more after it).
    configure(tmp_path, {"means": mean_model}, "decode_timeout = 300\ndecoders = 2\n")
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 12)
    fresh_pictures(gallery, 4, seed=2)
    age(mark(picture(gallery / "zz-hang.png", (1, 2, 3)), HANG))  # decoded last
    db = tmp_path / "index.sqlite"
    total = 17

    namespace_claims = kill_holding_a_claim(tmp_path, db, total)
    assert namespace_claims, "the killed scan left no claim of its own"

    result = scan_json(tmp_path, "index.sqlite", "gallery")
    assert result["tagged"] >= 1
    assert count(db, "SELECT COUNT(*) FROM taggings WHERE status = 'done'") == total
    assert query(db, "SELECT COUNT(*) FROM claims") == [(0,)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert export(tmp_path, "index.sqlite", "means") == clean_export(tmp_path, "gallery", "means")


def kill_holding_a_claim(tmp_path: Path, db: Path, total: int) -> list[tuple]:
    """Scan as pid 1 of a new PID namespace, its decoders hanging on a marked picture;
    SIGKILL it once it has tagged some pictures (it holds the hanging one's claim); the
    claims it left, owned by `HOST:1:...`."""
    victim = start(
        tmp_path,
        db.name,
        "scan",
        "-b",
        "4",
        "gallery",
        faults=FAULTS,
        prefix=("unshare", "--pid", "--fork"),
    )
    try:
        wait_for(
            lambda: (
                victim.poll() is not None
                or (
                    count(db, "SELECT COUNT(*) FROM claims") > 0
                    and count(db, "SELECT COUNT(*) FROM taggings") > 0
                )
            ),
            victim,
        )
    finally:
        kill_session(victim)
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read() if victim.stderr else ""
    assert count(db, "SELECT COUNT(*) FROM taggings") < total, "the scan ended before the kill"
    return query(db, f"SELECT owner FROM claims WHERE owner LIKE '{HOST}:1:%'")


# -- 2. someone else's database is refused untouched ------------------------------------
def notes_database(path: Path) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('buy milk'), ('call home')")
        conn.commit()
    return path


def random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(3).bytes(12288))
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [(notes_database, "not a dtindex index"), (random_bytes, "not an SQLite database")],
)
def test_a_file_that_is_not_an_index_is_refused_untouched(
    cli, tmp_path: Path, mean_model: Path, make: Callable[[Path], Path], says: str
) -> None:
    configure(tmp_path, {"means": mean_model})
    fresh_pictures(tmp_path / "gallery", 2, seed=4)
    picture(tmp_path / "gallery" / "aged.png", (1, 2, 3))
    other = make(tmp_path / "other.sqlite")
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    commands = [
        ("scan", "gallery"),
        ("scan", "--json"),
        ("export", "--model", "means"),
        ("status",),
        ("models",),
    ]
    for command in commands:
        code, out, err = cli("--db", "other.sqlite", *command)
        assert code == 1, (command, err)
        assert out == b"", command
        assert "other.sqlite" in err and says in err, (command, err)
        assert "Traceback" not in err
        assert hashlib.sha256(other.read_bytes()).hexdigest() == before, command
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("other.sqlite")]
        assert leftovers == ["other.sqlite"], (command, leftovers)
    if make is notes_database:
        with contextlib.closing(sqlite3.connect(f"{other.as_uri()}?mode=ro", uri=True)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            assert names == [("notes",)]
    assert not (tmp_path / "index.sqlite").exists()  # nor did it fall back to another file


# -- 3. waiting for a picture, the scan does not hold the write lock --------------------
def test_the_write_lock_is_free_while_the_scan_waits_for_a_decoder(
    tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, {"means": mean_model}, "decode_timeout = 6\ndecoders = 2\n")
    gallery = tmp_path / "gallery"
    for i in range(3):
        picture(gallery / f"a-good{i}.png", (70 * i, 10, 10))
    fresh_pictures(gallery, 2, seed=5)  # fresh*.png: after the good, before the broken
    (gallery / "g-broken.png").write_bytes(b"not a picture at all" * 10)  # fails: recorded
    mark(picture(gallery / "z-hang.png", (1, 2, 3)), HANG)  # the last in the walk
    before_hang = 7  # every file reads and hashes; only decoding z-hang.png hangs
    db = tmp_path / "index.sqlite"

    scan = start(tmp_path, "index.sqlite", "scan", "--json", "gallery", faults=FAULTS)
    try:
        # Every file is recorded and committed, the broken one's failure included: the
        # scan now waits on the hanging decoder.
        files = "SELECT COUNT(*) FROM files"
        failed = "SELECT COUNT(*) FROM taggings WHERE status = 'failed'"
        wait_for(
            lambda: (
                scan.poll() is not None
                or count(db, files) > before_hang
                or (count(db, files) == before_hang and count(db, failed) == 1)
            ),
            scan,
            timeout=30,
        )
        assert scan.poll() is None and count(db, files) == before_hang, (
            "nothing was committed while the scan waited for the hanging decoder"
        )
        with contextlib.closing(sqlite3.connect(db, timeout=2, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if the scan holds it
            other.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
            other.execute("INSERT INTO scratch VALUES (1)")
            other.execute("COMMIT")
        still_waiting = count(db, files) == before_hang
        assert still_waiting and scan.poll() is None, "the hanging decoder ended too soon"
        out, err = scan.communicate(timeout=60)
    finally:
        kill_session(scan)
    assert scan.returncode == 1, err
    assert b"the index is incomplete" in err, err
    result = json.loads(out)
    assert (result["files"], result["tagged"], result["to_retry"]) == (7, 5, 1), result
    assert b"decoding took over 6 s" in err


# -- 4. a full disk: said plainly, nothing wrong kept, the next scan completes ----------
def test_a_full_disk_stops_the_scan_and_the_next_scan_completes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "600k") as disk:
        # 768 scores per picture, all above store_threshold: the disk fills part way.
        positions = list(range(192)) * 4
        model = write_model(
            tmp_path / "models", "many", positions=positions, settings="normalize = true\n"
        )
        configure(tmp_path, {"many": model})
        fresh_pictures(tmp_path / "gallery", 30, seed=6)
        db = disk / "index.sqlite"

        code, out, err = dtindex(
            tmp_path, "disk/index.sqlite", "scan", "--json", "-b", "2", "gallery"
        )
        assert code == 1, err
        assert "disk is full" in err and "disk/index.sqlite" in err, err
        assert "Can't reconnect" not in err and "Traceback" not in err, err
        assert out == b""
        tagged = count(db, "SELECT COUNT(*) FROM taggings")
        assert 0 < tagged < 30, f"the disk must fill part way: {tagged} tagged"

        grown = subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], capture_output=True)
        assert grown.returncode == 0, grown.stderr
        result = scan_json(tmp_path, "disk/index.sqlite", "-b", "2", "gallery")
        assert result["tagged"] == 30 - tagged, result
        assert query(db, "SELECT COUNT(*) FROM claims") == [(0,)]
        assert query(db, "PRAGMA integrity_check") == [("ok",)]
        assert export(tmp_path, "disk/index.sqlite", "many") == clean_export(
            tmp_path, "gallery", "many"
        )


def test_an_index_on_a_full_disk_is_not_called_foreign(tmp_path: Path, mean_model: Path) -> None:
    """The disk filled up while no dtindex ran: commands fail, and say nothing false."""
    configure(tmp_path, {"means": mean_model})
    for i in range(3):
        picture(tmp_path / "gallery" / f"{i}.png", (80 * i, 9, 9))
    with tmpfs(tmp_path / "disk", "1m") as disk:
        scan_json(tmp_path, "disk/index.sqlite", "gallery")
        exported = export(tmp_path, "disk/index.sqlite", "means")
        index = disk / "index.sqlite"
        before = hashlib.sha256(index.read_bytes()).hexdigest()
        fill(disk)
        for command in (("status",), ("export", "--model", "means"), ("scan", "gallery")):
            code, _, err = dtindex(tmp_path, "disk/index.sqlite", *command)
            assert code == 1, (command, err)
            assert "not an SQLite database" not in err, (command, err)
            assert "not a dtindex index" not in err, (command, err)
            assert hashlib.sha256(index.read_bytes()).hexdigest() == before
        (disk / "filler").unlink()
        assert export(tmp_path, "disk/index.sqlite", "means") == exported


# -- 5. the racy-mtime window counts from the read --------------------------------------
def test_a_file_read_fresh_is_read_again_though_accepted_late(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(tmp_path, {"means": mean_model}, "decode_timeout = 3\ndecoders = 2\n")
    inject_faults(monkeypatch, FAULTS)
    gallery = tmp_path / "gallery"
    picture(gallery / "c-aged.png", (10, 200, 10))
    code, _, err = cli("scan", "gallery")  # the index exists and everything is loaded
    assert code == 0, err

    age(mark(picture(gallery / "a-hang.png", (1, 2, 3)), HANG))
    fresh = gallery / "b-fresh.bmp"
    Image.new("RGB", (8, 8), (250, 0, 0)).save(fresh)  # written now: mtime is now
    # Read at once beside a-hang.png, accepted (in walk order) only after it timed out.
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 1 and "the index is incomplete" in err, err
    assert json.loads(out)["hashed"] == 2

    # Rewritten in place, same size, and the clock shows the same mtime (coarse clocks).
    stat = fresh.stat()
    Image.new("RGB", (8, 8), (0, 0, 250)).save(fresh)
    os.utime(fresh, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = fresh.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ino,
    )
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 1 and "the index is incomplete" in err, err  # a-hang.png: retried
    result = json.loads(out)
    assert (result["hashed"], result["changed"]) == (1, 1), result

    code, ours, err = cli("export", "--model", "means")
    assert code == 0, err
    new_sha1 = hashlib.sha1(fresh.read_bytes()).hexdigest().encode()
    assert new_sha1 in ours
    code, _, err = cli("--db", "clean.sqlite", "scan", "gallery")
    assert code == 1, err
    code, clean, err = cli("--db", "clean.sqlite", "export", "--model", "means")
    assert code == 0, err
    assert ours == clean
