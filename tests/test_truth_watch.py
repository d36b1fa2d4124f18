"""End to end, through real processes: watch follows relative roots and roots that are
deleted, made anew or remounted; a service manager's stop (a signal to the whole process
group) leaves nothing recorded as failed, and the index always ends up as a clean scan's.

Every wait is on a condition (the database, or the process's log) with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from conftest import picture, write_model
from test_watch import Watcher

from indexer.imaging.spawning import MARK

PROMPTLY = 10.0  # seconds; the periodic rescan is an hour away, only the observer can do it


# -- processes ------------------------------------------------------------------------
def environment(base: Path, db: Path) -> dict[str, str]:
    """A private database, the config `deeptagger.toml` relative to the cwd, no user files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTINDEX_")}
    env.update(
        DTINDEX_DB=str(db),
        DTINDEX_CONFIG="deeptagger.toml",
        XDG_CONFIG_HOME=str(base / "xdg-config"),
        XDG_DATA_HOME=str(base / "xdg-data"),
        XDG_CACHE_HOME=str(base / "xdg-cache"),
    )
    return env


class Dtindex(Watcher):
    """A `dtindex` process run from `cwd` in a session (process group) of its own, as a
    service manager starts it; its stderr is collected by a thread (Watcher's)."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "indexer", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Poll `condition` every few milliseconds; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode} first:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout}s; log:\n{self.log()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.005)

    def signal_group(self, signum: int) -> int:
        """What a service manager does: the signal to every process of the group."""
        os.killpg(self.process.pid, signum)
        code = self.process.wait(30)
        self.reader.join(5)
        return code

    def ensure_gone(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        self.reader.join(5)


@contextlib.contextmanager
def running(cwd: Path, env: dict[str, str], *args: str) -> Iterator[Dtindex]:
    process = Dtindex(cwd, env, *args)
    try:
        yield process
    finally:
        process.ensure_gone()


def dtindex(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "indexer", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def export(cwd: Path, db: Path, model: str) -> bytes:
    done = dtindex(cwd, environment(cwd, db), "export", "--model", model)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def clean_export(cwd: Path, model: str, gallery: Path) -> bytes:
    """What a clean scan of the gallery, as it is now, into a fresh database exports."""
    db = cwd / "clean.sqlite"
    assert not db.exists()
    done = dtindex(cwd, environment(cwd, db), "scan", str(gallery))
    assert done.returncode == 0, done.stderr.decode()
    expected = export(cwd, db, model)
    assert expected, "the clean scan exported nothing"
    return expected


# -- the database, read beside the writer ------------------------------------------
def query(db: Path, sql: str, *params: object) -> int:
    try:
        uri = f"file:{db}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
            return int(conn.execute(sql, params).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def indexed(db: Path, path: Path) -> bool:
    return query(db, "SELECT COUNT(*) FROM files WHERE path = ?", os.fsencode(path)) > 0


def tagged(db: Path, path: Path) -> bool:
    """The file is indexed under this absolute path and its content has a result."""
    sql = (
        "SELECT COUNT(*) FROM files f JOIN taggings t ON t.content_id = f.content_id "
        "WHERE f.path = ? AND t.status = 'done'"
    )
    return query(db, sql, os.fsencode(path)) > 0


def failed(db: Path) -> int:
    return query(db, "SELECT COUNT(*) FROM taggings WHERE status = 'failed'")


def claims(db: Path) -> int:
    return query(db, "SELECT COUNT(*) FROM claims")


def assert_clean_stop(db: Path, log: str, booting: bool = False) -> None:
    """Nothing recorded as failed because of the stop, no claim left, and (unless a
    decoder may still have been booting when the signal came) no decoder killed."""
    assert "Traceback" not in log, log
    if not booting:
        assert "decoder crashed" not in log, log  # -v logs even the ones a stop excuses
    assert failed(db) == 0, log
    assert claims(db) == 0, log
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- fixtures -------------------------------------------------------------------------
def means_gallery(tmp_path: Path, config: str = "") -> tuple[Path, Path]:
    """cwd (the real path of tmp_path) with a `means` config, and its `gallery` folder."""
    base = Path(os.path.realpath(tmp_path))
    model = write_model(base / "models", "means", mean=True, settings="normalize = true\n")
    (base / "deeptagger.toml").write_text(f'{config}[models.means]\nmodel = "{model}"\n')
    picture(base / "gallery" / "first.png", (255, 0, 0))
    return base, base / "gallery"


def reconciled_after(watch: Dtindex, anew: int) -> bool:
    """The rescan that follows the `anew`-th "made anew" is over (it may refuse an empty
    root): only what the re-armed observer reports can bring later files in."""
    after = watch.log().split("made anew")[anew:]
    return len(after) == 1 and ("reconciled" in after[0] or "root is empty" in after[0])


def copy_in(source: Path, target: Path) -> Path:
    """A picture copied into the gallery: a fresh file, just written."""
    shutil.copyfile(source, target)
    return target


def arrivals(base: Path) -> list[Path]:
    """Two fresh pictures in a staging folder outside the gallery."""
    return [
        picture(base / "staging" / name, colour, old=False)
        for name, colour in (("third.png", (0, 255, 0)), ("fourth.png", (255, 255, 0)))
    ]


def arrive_one_by_one(watch: Dtindex, db: Path, staged: list[Path], folder: Path) -> None:
    """Each picture copied in once the one before is tagged. The first may still be found
    by a walk of an event of the old root that was pending; the next only by the observer."""
    for source in staged:
        target = copy_in(source, folder / source.name)
        watch.wait_until(partial(tagged, db, target), PROMPTLY)


@dataclass(frozen=True)
class Slow:
    model: Path
    gallery: Path
    expected: bytes  # a clean scan's export


@pytest.fixture(scope="module")
def slow(slow_gallery: tuple[Path, bytes]) -> Slow:
    """60 pictures (66 files) and a model slow enough to stop mid-way, scanned clean once:
    the session's shared slow gallery (conftest), which the kill tests elsewhere use too."""
    home, expected = slow_gallery
    home = Path(os.path.realpath(home))
    return Slow(home / "models" / "slow.model", home / "gallery", expected)


def slow_copy(slow: Slow, tmp_path: Path, settings: str = "") -> Path:
    base = Path(os.path.realpath(tmp_path))
    (base / "deeptagger.toml").write_text(f'{settings}[models.slow]\nmodel = "{slow.model}"\n')
    shutil.copytree(slow.gallery, base / "gallery")  # mtimes kept: no racy-clean rereads
    return base


def group_decoders(pgid: int) -> list[int]:
    """Worker processes (decoders, the score writer) in the process group."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if MARK.encode() in cmdline:
            found.append(int(entry))
    return found


def signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def bit(signum: int) -> int:
    return 1 << (signum - 1)


def assert_decoders_ignore(pgid: int, signum: int) -> None:
    """The group's spawned processes (decoders, busy by now, and the score writer) ignore
    the signal the test is about to send, or hold it blocked until they ignore it (a
    process still starting: a pending signal is dropped once it is set to be ignored)."""
    decoders = group_decoders(pgid)
    assert decoders, "no decoder process in the group"
    for pid in decoders:
        safe = signal_mask(pid, "SigIgn") | signal_mask(pid, "SigBlk")
        assert safe & bit(signum), f"process {pid} would die of {signum}"


# -- 1. relative roots ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "roots"),
    [("", ["gallery"]), ("", ["./g/../gallery"]), ('roots = ["gallery"]\n', [])],
    ids=["relative", "dotted", "config-roots"],
)
def test_watch_tags_a_picture_copied_into_a_relative_root(
    tmp_path: Path, config: str, roots: list[str]
) -> None:
    base, gallery = means_gallery(tmp_path, config)
    (base / "g").mkdir()
    db = base / "index.sqlite"
    staged = picture(base / "staging" / "second.png", (0, 255, 0), old=False)
    with running(base, environment(base, db), "watch", "--settle", "0.3", *roots) as watch:
        watch.wait_until(lambda: "watching" in watch.log())
        assert tagged(db, gallery / "first.png")
        second = copy_in(staged, gallery / "second.png")
        watch.wait_until(lambda: tagged(db, second), PROMPTLY)
        assert watch.terminate() == 0, watch.log()
    assert "periodic rescan" not in watch.log()
    assert export(base, db, "means") == clean_export(base, "means", gallery)


# -- 2. a root deleted and made anew, or unmounted and mounted again --------------------
def test_watch_follows_a_root_deleted_and_made_anew(tmp_path: Path) -> None:
    base, gallery = means_gallery(tmp_path)
    picture(gallery / "sub" / "second.png", (0, 0, 255))
    db = base / "index.sqlite"
    staged = arrivals(base)
    with running(base, environment(base, db), "watch", "--settle", "0.3", str(gallery)) as watch:
        watch.wait_until(lambda: "watching" in watch.log())
        assert tagged(db, gallery / "first.png") and tagged(db, gallery / "sub" / "second.png")

        shutil.rmtree(gallery)
        watch.wait_until(lambda: "root is gone" in watch.log(), PROMPTLY)
        gallery.mkdir()
        watch.wait_until(lambda: reconciled_after(watch, 1), PROMPTLY)
        arrive_one_by_one(watch, db, staged, gallery)
        watch.wait_until(
            lambda: (
                not indexed(db, gallery / "first.png")
                and not indexed(db, gallery / "sub" / "second.png")
            ),
            PROMPTLY,
        )
        assert watch.terminate() == 0, watch.log()
    assert export(base, db, "means") == clean_export(base, "means", gallery)


def mount_tmpfs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], check=True, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_watch_follows_a_root_unmounted_and_mounted_again(tmp_path: Path) -> None:
    base, gallery = means_gallery(tmp_path)
    held = base / "held"  # the disk's pictures while it is away
    shutil.copytree(gallery, held)
    shutil.rmtree(gallery)
    staging = base / "staging-mount"
    db = base / "index.sqlite"
    staged = arrivals(base)
    mount_tmpfs(gallery)
    try:
        shutil.copytree(held, gallery, dirs_exist_ok=True)
        picture(gallery / "second.png", (0, 0, 255))
        shutil.copy2(gallery / "second.png", held / "second.png")
        watch = Dtindex(base, environment(base, db), "watch", "--settle", "0.3", str(gallery))
        try:
            watch.wait_until(lambda: "watching" in watch.log())
            assert tagged(db, gallery / "first.png") and tagged(db, gallery / "second.png")

            unmount(gallery)  # the empty mount point is the root now
            watch.wait_until(lambda: reconciled_after(watch, 1), PROMPTLY)
            assert "root is empty" in watch.log()
            assert indexed(db, gallery / "first.png") and indexed(db, gallery / "second.png")

            mount_tmpfs(staging)  # the disk comes back with its pictures
            shutil.copytree(held, staging, dirs_exist_ok=True)
            subprocess.run(["mount", "--move", str(staging), str(gallery)], check=True)
            watch.wait_until(lambda: reconciled_after(watch, 2), PROMPTLY)
            arrive_one_by_one(watch, db, staged, gallery)
            assert tagged(db, gallery / "first.png") and tagged(db, gallery / "second.png")
            assert watch.terminate() == 0, watch.log()
        finally:
            watch.ensure_gone()
        assert export(base, db, "means") == clean_export(base, "means", gallery)
    finally:
        for folder in (staging, gallery):
            while os.path.ismount(folder):
                unmount(folder)


# -- 3. a service manager's stop: a signal to the whole process group ------------------
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name
)
def test_group_signal_stops_a_scan_after_its_batch(
    slow: Slow, tmp_path: Path, signum: signal.Signals
) -> None:
    base = slow_copy(slow, tmp_path)
    db = base / "index.sqlite"
    env = environment(base, db)
    with running(base, env, "-v", "scan", "-b", "2", "gallery") as scan:
        scan.wait_until(lambda: query(db, "SELECT COUNT(*) FROM taggings") >= 4)
        assert_decoders_ignore(scan.process.pid, signum)
        code = scan.signal_group(signum)
    log = scan.log()
    assert code == 128 + signum, log
    assert f"interrupted by {signal.Signals(signum).name}" in log
    assert f"{signal.Signals(signum).name}: finishing the batch in flight" in log
    assert_clean_stop(db, log)
    assert query(db, "SELECT COUNT(*) FROM taggings") < 60, "the scan finished first"

    resumed = dtindex(base, env, "scan", "gallery")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert failed(db) == 0 and claims(db) == 0
    assert export(base, db, "slow") == slow.expected


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name
)
def test_group_signal_stops_watch_while_it_catches_up_as_a_scan(
    slow: Slow, tmp_path: Path, signum: signal.Signals
) -> None:
    """Stopped before it caught up, a watch ends as a stopped scan does (128+N): it never
    says it caught up or is watching (the old code said both, then exited 0)."""
    base = slow_copy(slow, tmp_path)
    db = base / "index.sqlite"
    env = environment(base, db)
    with running(base, env, "-v", "watch", "-b", "2", "gallery") as watch:
        watch.wait_until(lambda: query(db, "SELECT COUNT(*) FROM taggings") >= 4)
        assert_decoders_ignore(watch.process.pid, signum)
        code = watch.signal_group(signum)
    log = watch.log()
    assert code == 128 + signum, log
    assert f"{signal.Signals(signum).name}: finishing the batch in flight" in log
    assert log.strip().splitlines()[-1] == (
        f"dtindex: interrupted by {signal.Signals(signum).name}; a rerun resumes"
    ), log
    assert "caught up" not in log and "watching" not in log and "watch stopped" not in log
    assert query(db, "SELECT COUNT(*) FROM roots WHERE scanned_ns IS NOT NULL") == 0, log
    assert_clean_stop(db, log)
    assert query(db, "SELECT COUNT(*) FROM taggings") < 60, "caught up before the stop"

    resumed = dtindex(base, env, "scan", "gallery")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert export(base, db, "slow") == slow.expected


def signal_while_decoders_boot(base: Path, env: dict[str, str], command: str) -> Stopped:
    """SIGTERM to the group as soon as both decoders exist: they are spawned Pythons,
    importing for a while before they can ignore anything."""
    masks: dict[int, int] = {}  # decoder pid: its blocked | ignored signals at first sight
    with running(base, env, "-v", command, "-b", "2", "gallery") as process:

        def both_decoders_born() -> bool:
            for pid in group_decoders(process.process.pid):
                with contextlib.suppress(OSError):
                    masks.setdefault(pid, signal_mask(pid, "SigBlk") | signal_mask(pid, "SigIgn"))
            return len(masks) >= 2

        process.wait_until(both_decoders_born)
        code = process.signal_group(signal.SIGTERM)
    return Stopped(code, process.log(), masks)


@dataclass(frozen=True)
class Stopped:
    code: int
    log: str
    masks: dict[int, int]


@pytest.mark.parametrize("command", ["watch", "scan"])
def test_group_sigterm_while_the_decoders_start(slow: Slow, tmp_path: Path, command: str) -> None:
    """Whatever becomes of a decoder still booting, the stop is clean: nothing recorded
    as failed, no claim left, and a rescan completes the export. A watch has not caught
    up by then: it ends as the scan does (143)."""
    base = slow_copy(slow, tmp_path, "decoders = 2\n")
    db = base / "index.sqlite"
    env = environment(base, db)
    stopped = signal_while_decoders_boot(base, env, command)
    assert stopped.code == 128 + signal.SIGTERM, stopped.log
    assert "SIGTERM: finishing the batch in flight" in stopped.log
    assert_clean_stop(db, stopped.log, booting=True)
    assert query(db, "SELECT COUNT(*) FROM taggings") < 60, "done before the stop"

    resumed = dtindex(base, env, "scan", "gallery")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert export(base, db, "slow") == slow.expected


def test_decoders_booting_survive_a_group_sigterm(slow: Slow, tmp_path: Path) -> None:
    """A decoder can be started with the stop signals blocked (the mask is inherited
    through fork and exec), so a group signal cannot kill it before it ignores them.
    Note: multiprocessing's resource tracker, started by the first spawn, unblocks SIGINT
    and SIGTERM in the thread that starts it: start it before blocking."""
    base = slow_copy(slow, tmp_path, "decoders = 2\n")
    db = base / "index.sqlite"
    stopped = signal_while_decoders_boot(base, environment(base, db), "watch")
    assert stopped.code == 128 + signal.SIGTERM, stopped.log  # before it caught up
    stoppable = {p: f"{m:#x}" for p, m in stopped.masks.items() if not m & bit(signal.SIGTERM)}
    assert not stoppable, f"decoders booting with SIGTERM neither blocked nor ignored: {stoppable}"
    assert_clean_stop(db, stopped.log)  # and, with -v, no "decoder crashed" in the log
