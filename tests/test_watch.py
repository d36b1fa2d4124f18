"""`dtindex watch` through the CLI with a real watchdog observer (inotify and polling)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import age, picture
from PIL import Image


class Watcher:
    """A `dtindex watch` process whose stderr is collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "indexer", "watch", "--settle", "0.3", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace"))

    def log(self) -> str:
        return "".join(self.lines)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"watch exited {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout}s; log:\n{self.log()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.05)  # wake on the process's exit, or poll again

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(15)
        self.reader.join(5)
        return code


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture
def gallery(tmp_path: Path, mean_model: Path, cli) -> Path:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    folder = tmp_path / "gallery"
    picture(folder / "first.png", (255, 0, 0))
    return folder


def exported(cli, by: str = "sha1") -> str:
    code, out, _ = cli("export", "--model", "means", "--id", by)
    return out.decode() if code == 0 else ""


@pytest.mark.parametrize(
    "observer", [[], ["--polling", "--interval", "0.2"]], ids=["native", "polling"]
)
def test_watch_follows_the_gallery(cli, gallery: Path, tmp_path: Path, observer: list[str]) -> None:
    watcher = Watcher(*observer, str(gallery))
    try:
        watcher.wait_until(lambda: sha1(gallery / "first.png") in exported(cli))

        second = picture(tmp_path / "staging" / "second.png", (0, 255, 0), old=False)
        (gallery / "second.png").write_bytes(second.read_bytes())
        watcher.wait_until(lambda: sha1(gallery / "second.png") in exported(cli))

        # A broken picture (half of one) moved in fails at once: its mtime is old, so it is
        # not one still being written. Written whole, it ends up tagged.
        noisy = tmp_path / "staging" / "slow.png"
        Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(noisy)
        data = noisy.read_bytes()
        target = gallery / "slow.png"
        move_in_broken(data[: len(data) // 2], tmp_path / "staging" / "half.png", target)
        db = tmp_path / "index.sqlite"
        watcher.wait_until(lambda: failed_count(db) >= 1)
        with open(target, "ab") as handle:
            handle.write(data[len(data) // 2 :])
        watcher.wait_until(lambda: sha1(target) in exported(cli))

        (gallery / "sub").mkdir()
        (gallery / "second.png").rename(gallery / "sub" / "moved.png")
        watcher.wait_until(
            lambda: (
                str(gallery / "sub" / "moved.png") in exported(cli, "path")
                and str(gallery / "second.png") not in exported(cli, "path")
            )
        )
        (gallery / "first.png").unlink()
        watcher.wait_until(lambda: str(gallery / "first.png") not in exported(cli, "path"))

        again = Watcher(*observer, str(gallery))
        assert again.process.wait(30) == 1
        again.reader.join(5)
        assert "another dtindex watch is running" in again.log()
    finally:
        code = watcher.terminate()
    assert code == 0, watcher.log()
    assert "tagged" in watcher.log()

    picture(gallery / "while-stopped.png", (0, 0, 255))
    restarted = Watcher(*observer, str(gallery))
    try:
        restarted.wait_until(lambda: sha1(gallery / "while-stopped.png") in exported(cli))
        restarted.wait_until(lambda: "watching" in restarted.log())  # else stopped: 143
    finally:
        assert restarted.terminate() == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def move_in_broken(data: bytes, staged: Path, target: Path) -> None:
    """`data` written long ago (its mtime old), then moved to `target`."""
    staged.write_bytes(data)
    age(staged)
    staged.rename(target)


def failed_count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(
                conn.execute("SELECT COUNT(*) FROM taggings WHERE status = 'failed'").fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0


def test_many_files_copied_at_once_run_in_batches(cli, gallery: Path, tmp_path: Path) -> None:
    watcher = Watcher("-b", "8", str(gallery))
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        sources = [
            picture(tmp_path / "in" / f"{i}.png", (i, 100, 200 - i), old=False) for i in range(40)
        ]
        for source in sources:
            (gallery / source.name).write_bytes(source.read_bytes())
        watcher.wait_until(lambda: len(exported(cli).splitlines()) >= 40 * 2)
    finally:
        assert watcher.terminate() == 0
    batch_lines = [line for line in watcher.lines if "tagged" in line and "means" in line]
    assert len(batch_lines) < 40  # grouped into batches, not one call per picture


def test_watch_counts_files_and_forgets_failures_fixed_since(
    cli, gallery: Path, tmp_path: Path
) -> None:
    """One `mv` is one file moved, not two; files copied into a folder renamed at once are
    counted where they end up, with no batch of paths gone meanwhile; a broken picture
    fails, and leaves the total once it is written whole and tagged."""
    watcher = Watcher(str(gallery))
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        (gallery / "first.png").rename(gallery / "renamed.png")
        watcher.wait_until(lambda: "moved" in watcher.log())
        moved = [line for line in watcher.lines if "moved" in line]
        assert moved[0].startswith("dtindex: 1 file moved; since start"), moved

        sources = [
            picture(tmp_path / "in" / f"{i}.png", (i, 100, 200 - i), old=False) for i in range(12)
        ]
        (gallery / "incoming").mkdir()
        for source in sources:
            (gallery / "incoming" / source.name).write_bytes(source.read_bytes())
        (gallery / "incoming").rename(gallery / "done")
        done = {str(gallery / "done" / source.name) for source in sources}
        watcher.wait_until(lambda: done <= set(exported(cli, "path").split()))

        noisy = tmp_path / "slow.png"
        Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(noisy)
        data, target = noisy.read_bytes(), gallery / "slow.png"
        move_in_broken(data[: len(data) // 2], tmp_path / "half.png", target)
        watcher.wait_until(lambda: "1 failed; since start" in watcher.log())
        with open(target, "ab") as handle:
            handle.write(data[len(data) // 2 :])
        watcher.wait_until(lambda: sha1(target) in exported(cli))
        watcher.wait_until(lambda: "1 changed file: tagged 1" in watcher.log())
    finally:
        assert watcher.terminate() == 0
    after = watcher.log().split("watching", 1)[1].splitlines()[1:]
    assert not [line for line in after if "settled" in line or "tagged 0;" in line], after
    new = [int(line.split()[1]) for line in after if " new file" in line]
    assert sum(new) == 12 + 1, after  # and slow.png
    assert "failed" not in after[-1] and after[-1].startswith("dtindex: watch stopped"), after


def test_watch_over_a_root_emptied_since_the_scan_takes_allow_empty(
    cli, gallery: Path, tmp_path: Path
) -> None:
    """Found by the hunting test (seed 19): watch refused a root whose pictures were all
    deleted and told the user to use --allow-empty, an option only scan had."""
    assert cli("scan", "gallery/../gallery")[0] == 0
    (gallery / "first.png").unlink()
    refused = Watcher(str(gallery))
    assert refused.process.wait(60) == 1
    refused.reader.join(5)
    assert "Use --allow-empty if they were deleted" in refused.log(), refused.log()
    watcher = Watcher("--allow-empty", str(gallery))
    try:
        watcher.wait_until(
            lambda: "first.png" not in exported(cli, "path") and "caught up" in watcher.log()
        )
        picture(gallery / "second.png", (0, 0, 255), old=False)
        watcher.wait_until(lambda: "second.png" in exported(cli, "path"))
    finally:
        assert watcher.terminate() == 0, watcher.log()


def root_scanned(cli) -> int:
    code, out, err = cli("status", "--json")
    assert code == 0, err
    (root,) = json.loads(out)["roots"]
    return int(root["scanned_ns"])


def test_status_beside_a_running_watch_shows_its_last_reconcile(
    cli, gallery: Path, tmp_path: Path
) -> None:
    """A watch's rescans mark the roots scanned as a scan does: `dtindex status` beside a
    running watch shows when its last reconcile began, not an old scan's time."""
    assert cli("scan", str(gallery))[0] == 0
    old = int(time.mktime((2001, 2, 3, 4, 5, 0, 0, 0, -1)) * 1e9)
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        conn.execute("UPDATE roots SET scanned_ns = ?", (old,))  # a scan long ago
    assert b"scanned 2001-02-03 04:05" in cli("status")[1]
    started = time.time_ns()
    watcher = Watcher("--rescan", "1", str(gallery))
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())  # caught up: reconciled
        before = root_scanned(cli)
        code, out, err = cli("status")
        after = root_scanned(cli)  # a periodic rescan may come between
        assert code == 0, err
        assert started <= before <= after <= time.time_ns()
        shown = {time.strftime("%Y-%m-%d %H:%M", time.localtime(t / 1e9)) for t in (before, after)}
        line = next(line for line in out.decode().splitlines() if line.startswith("root:"))
        assert any(f"scanned {when})" in line for when in shown), (line, shown)
        rescans = watcher.log().count("periodic rescan")
        watcher.wait_until(lambda: watcher.log().count("periodic rescan") > rescans)
        assert root_scanned(cli) > after  # each reconcile, not only the first
    finally:
        assert watcher.terminate() == 0, watcher.log()


def a_jpeg(tmp_path: Path, name: str) -> bytes:
    """A JPEG's bytes (noise: tens of kilobytes)."""
    staged = tmp_path / "staging" / name
    staged.parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (128, 128), os.urandom(128 * 128 * 3)).save(staged, quality=95)
    return staged.read_bytes()


PUT_BACK = "perhaps not whole yet"  # the debug line of a file watch looks at again later


def failed_in_status(cli) -> int:
    code, out, err = cli("status", "--json")
    assert code == 0, err
    return int(json.loads(out)["failed"])


def write_in_two_parts(
    watcher: Watcher, data: bytes, target: Path, meanwhile: Callable[[], None] = lambda: None
) -> None:
    """`data` to `target` in two parts 1.5 s apart, like a slow download; the first is
    put back once watch has decoded it (its debug line), and `meanwhile` runs then."""
    half, put_back = len(data) // 2, watcher.log().count(PUT_BACK)
    started = time.monotonic()
    with open(target, "wb") as handle:
        handle.write(data[:half])
    watcher.wait_until(lambda: watcher.log().count(PUT_BACK) > put_back)
    meanwhile()
    # The download's pause (the scenario, not a synchronisation): 1.5 s between parts.
    time.sleep(max(0.0, started + 1.5 - time.monotonic()))
    with open(target, "ab") as handle:
        handle.write(data[half:])


def test_a_download_that_pauses_is_tagged_whole_and_never_reported_broken(
    cli, gallery: Path, tmp_path: Path
) -> None:
    """Issue 27, item 10: a JPEG written in two parts 1.5 s apart, like a slow download.
    Its first part holds still for --settle and is decoded ("image file is truncated"),
    but was written moments before: watch puts it back, with no warning and no failure,
    and tags the whole once it is written, counted as one new file. The same picture
    saved again as slowly is one changed file."""
    watcher = Watcher("-v", str(gallery))
    target = gallery / "slow.jpg"
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        write_in_two_parts(watcher, a_jpeg(tmp_path, "slow.jpg"), target)
        watcher.wait_until(lambda: sha1(target) in exported(cli))
        watcher.wait_until(lambda: "1 new file: tagged 1;" in watcher.log())
        before = sha1(target)

        def as_before() -> None:  # put back: the index still holds the picture it had
            assert before in exported(cli)

        write_in_two_parts(watcher, a_jpeg(tmp_path, "again.jpg"), target, as_before)
        watcher.wait_until(lambda: sha1(target) in exported(cli))
        watcher.wait_until(lambda: "1 changed file: tagged 1;" in watcher.log())
        assert failed_count(tmp_path / "index.sqlite") == 0
        assert failed_in_status(cli) == 0
    finally:
        assert watcher.terminate() == 0, watcher.log()
    lines = watcher.log().splitlines()
    about = [line for line in lines if line.startswith(f"dtindex: {target}: ")]
    assert len(about) >= 2 and all(PUT_BACK in line for line in about), about  # no warning
    assert "cannot decode: image file is truncated" in about[0]
    after = watcher.log().split("watching", 1)[1].splitlines()[1:]
    counted = [line.split(";")[0] for line in after if "since start" in line]
    assert counted == [
        "dtindex: 1 new file: tagged 1",
        "dtindex: 1 changed file: tagged 1",
        "dtindex: watch stopped",
    ], after
    assert lines[-1] == "dtindex: watch stopped; since start: tagged 3", lines[-1]


def test_a_picture_still_truncated_after_the_grace_window_is_reported_failed(
    cli, gallery: Path, tmp_path: Path
) -> None:
    """Half a JPEG that is never finished: put back at first, then, unchanged once the
    grace window has passed, warned about and recorded as failed as any broken picture;
    watch goes on, and exits 0 when stopped."""
    watcher = Watcher("-v", str(gallery))
    target = gallery / "stalled.jpg"
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        data = a_jpeg(tmp_path, "stalled.jpg")
        target.write_bytes(data[: len(data) // 2])
        watcher.wait_until(lambda: PUT_BACK in watcher.log())
        watcher.wait_until(lambda: "1 new file: tagged 0, 1 failed;" in watcher.log())
        assert failed_count(tmp_path / "index.sqlite") == 1
        assert failed_in_status(cli) == 1
        assert sha1(gallery / "first.png") in exported(cli)
    finally:
        assert watcher.terminate() == 0, watcher.log()
    lines = watcher.log().splitlines()
    about = [line for line in lines if line.startswith(f"dtindex: {target}: ")]
    assert len(about) == 2 and PUT_BACK in about[0], about  # put back once, then reported
    assert about[1].startswith(f"dtindex: {target}: cannot decode: image file is truncated")
    assert PUT_BACK not in about[1]
    assert lines[-1] == "dtindex: watch stopped; since start: tagged 1, 1 failed", lines[-1]


def test_a_watch_stopped_before_a_change_settled_says_it_left_it(
    cli, gallery: Path, tmp_path: Path
) -> None:
    """A picture copied in moments before SIGTERM is not read (it had not settled): the
    watch still exits 0, as a daemon stopped does, and says that the next scan or watch
    reads it, which the next scan does; the old watch said nothing of it."""
    watcher = Watcher("-v", "--settle", "60", "./gallery/../gallery")
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        late = picture(tmp_path / "staging" / "late.png", (0, 255, 0), old=False)
        os.replace(late, gallery / "late.png")
        watcher.wait_until(lambda: f"event: {gallery / 'late.png'}" in watcher.log())
    finally:
        code = watcher.terminate()
    assert code == 0, watcher.log()
    said = "1 change heard in its last moments not read yet: the next scan or watch reads them"
    assert said in watcher.log(), watcher.log()
    assert sha1(gallery / "late.png") not in exported(cli)
    code, _, err = cli("scan", "gallery")
    assert code == 0 and sha1(gallery / "late.png") in exported(cli), err
