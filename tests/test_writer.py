"""The process that writes a scan's scores (gallery/writer.py): its death fails the scan
instead of shrinking the index, and a killed scan's writer stores what it was given and
goes away; either way the next scan's export equals a clean scan's."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import threading
from pathlib import Path

import pgserver
import pytest
from conftest import BOTH, fault_env, make_gallery, picture, slow_model, wait_for, workers_of
from PIL import Image
from test_resume import count, dtindex
from test_truth_store import HANG, mark


class Lines:
    """A running command's stderr, read by a thread so the test can wait on a line."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        stream = process.stderr
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.append(line.decode(errors="replace"))

    def text(self) -> str:
        self.thread.join(30)
        return "".join(self.lines)

    def writer_pid(self) -> int | None:
        for line in list(self.lines):
            found = re.search(r"index writer ready \(pid (\d+)\)", line)
            if found:
                return int(found.group(1))
        return None


def exits_within(pid: int, seconds: float) -> bool:
    """Whether process `pid` (not our child) ends within `seconds`: a pidfd is readable
    once it has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def roundabout(gallery: Path) -> str:
    """`gallery` relative to the working folder, through a `..`: how a user may name it."""
    return os.path.join(os.path.relpath(gallery.parent), "..", gallery.parent.name, gallery.name)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What a clean scan of `setup`'s gallery exports: the same pictures, hence the same
    export (it names contents, not paths), for each test; made once, as it costs seconds."""
    home = tmp_path_factory.mktemp("clean")
    gallery = setup(home)
    db = home / "clean.sqlite"
    done = dtindex(home, db, "scan", "-b", "2", str(gallery))
    assert done.wait(120) == 0, done.stderr.read() if done.stderr else ""
    return dtindex(home, db, "export", "--model", "slow").communicate()[0]


def resumed_export(tmp_path: Path, db: str, gallery: Path) -> bytes:
    resumed = dtindex(tmp_path, db, "scan", "-b", "2", roundabout(gallery))
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert count(db, "SELECT COUNT(*) FROM taggings WHERE status = 'done'") == 33
    return dtindex(tmp_path, db, "export", "--model", "slow").communicate()[0]


def setup(tmp_path: Path) -> Path:
    model = slow_model(tmp_path / "models", rounds=600)  # killed mid-scan: slow enough
    (tmp_path / "deeptagger.toml").write_text(f'[models.slow]\nmodel = "{model}"\n')
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 30)  # and 3 duplicates of 3 of them
    for i in range(3):  # pictures written a moment ago, as a camera or a browser does
        Image.new("RGB", (8, 8), (i, 50, 200)).save(gallery / f"fresh{i}.png")
    return gallery  # 33 contents


@BOTH
def test_a_killed_writer_fails_the_scan_and_the_next_scan_completes(
    tmp_path: Path, index_db: str, expected: bytes
) -> None:
    """One more picture's decoder hangs until the decode time limit, so the scan is still
    running once its writer is ready however loaded the machine is (under load the scan
    had finished inline before its writer was ready to be killed)."""
    gallery = setup(tmp_path)
    held = hold_one_picture(tmp_path, gallery)

    scan = ("-v", "scan", "-b", "2", roundabout(gallery))
    victim = dtindex(tmp_path, index_db, *scan, extra=fault_env())
    lines = Lines(victim)
    wait_for(lambda: lines.writer_pid() is not None or victim.poll() is not None, victim)
    pid = lines.writer_pid()
    assert pid is not None, lines.text()
    os.kill(pid, signal.SIGKILL)
    assert victim.wait(120) == 1, lines.text()
    err = lines.text()
    assert "index writer died (signal SIGKILL)" in err, err

    held.unlink()
    assert resumed_export(tmp_path, index_db, gallery) == expected


def test_a_killed_scans_writer_stores_what_it_has_and_exits(
    tmp_path: Path, expected: bytes
) -> None:
    """One picture's decoder is held, as in the test above, so the scan is still running
    once its writer is ready (under load it had finished first)."""
    gallery = setup(tmp_path)
    held = hold_one_picture(tmp_path, gallery)
    db = str(tmp_path / "index.sqlite")

    scan = ("-v", "scan", "-b", "2", roundabout(gallery))
    victim = dtindex(tmp_path, db, *scan, extra=fault_env())
    lines = Lines(victim)
    wait_for(lambda: count(db, "SELECT COUNT(*) FROM taggings") >= 4, victim)
    wait_for(lambda: lines.writer_pid() is not None or victim.poll() is not None, victim)
    pid = lines.writer_pid()
    decoders = [worker for worker in workers_of(victim.pid) if worker != pid]
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    for decoder in decoders:  # the held one spins on without its scan: the test's fault
        with contextlib.suppress(ProcessLookupError):
            os.kill(decoder, signal.SIGKILL)
    err = lines.text()
    assert pid is not None, err
    assert exits_within(pid, 60), "the writer outlived its scan"

    assert pgserver.rows(db, "PRAGMA integrity_check") == [("ok",)]
    done = count(db, "SELECT COUNT(*) FROM taggings WHERE status = 'done'")
    with_scores = count(db, "SELECT COUNT(DISTINCT content_id) FROM scores")
    assert done == with_scores, "a tagging marked done without its scores"
    held.unlink()
    assert resumed_export(tmp_path, db, gallery) == expected


def hold_one_picture(tmp_path: Path, gallery: Path) -> Path:
    """One more picture, whose decoder hangs (under `fault_env`) until the decode time
    limit: the scan cannot end before then, so its writer is ready while it runs however
    loaded the machine is. The test removes it before the scan that completes."""
    held = mark(picture(gallery / "held.png", (1, 2, 3)), HANG)
    config = tmp_path / "deeptagger.toml"
    config.write_text("decode_timeout = 10\n" + config.read_text())
    return held
