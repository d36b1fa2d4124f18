"""`scan --ray`: decoding and inference on Ray give the index a local scan gives.

Ray is an optional extra for users (`dtindex[ray]`) and part of the `test` extra; a
checkout without it skips these tests, CI (`CI=true`) fails them. One local Ray instance
serves the module: `scan --ray local` uses a Ray already running in its process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FAULTS, age, fault_env, fault_pictures, inject_faults, picture, wait_for

if os.environ.get("CI"):
    import ray  # CI installs the test extra: a missing Ray is a failure there
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'dtindex[ray]'")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    # The workers' decoders take the markers; only a file holding one is affected.
    faults = {"env_vars": fault_env(FAULTS)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=faults)
    yield
    ray.shutdown()


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """Pictures of several colours and sizes, a copy, a truncated PNG and a text file."""
    folder = tmp_path / "gallery"
    for k in range(12):
        colour = (20 * k, 255 - 15 * k, (70 * k) % 256)
        picture(folder / f"p{k}.png", colour, size=(16 + 4 * k, 40 - 2 * k))
    picture(folder / "sub" / "photo.jpg", (200, 120, 30), size=(60, 30), fmt="JPEG")
    (folder / "sub" / "copy.png").write_bytes((folder / "p3.png").read_bytes())
    (folder / "bad.png").write_bytes((folder / "p5.png").read_bytes()[:70])
    (folder / "notes.png").write_text("not a picture")
    age(folder / "sub" / "copy.png", folder / "bad.png", folder / "notes.png")
    return folder


def scanned(cli, gallery: Path, db: Path, *extra: str) -> dict[str, int]:
    code, out, err = cli("scan", "--db", str(db), "--json", *extra, str(gallery))
    assert code == 0, err
    counts: dict[str, int] = json.loads(out)
    return counts


def exported(cli, db: Path) -> list[str]:
    code, out, err = cli("export", "--db", str(db), "-m", "palette", "--id", "path")
    assert code == 0, err
    return sorted(out.decode().splitlines())


def failures(cli, db: Path) -> list[str]:
    code, out, err = cli("status", "--db", str(db))
    assert code == 0, err
    return sorted(line for line in (out.decode() + err).splitlines() if "failed:" in line)


def test_a_ray_scan_gives_the_index_a_local_scan_gives(cli, gallery: Path, tmp_path) -> None:
    local, fanned = tmp_path / "local.sqlite", tmp_path / "ray.sqlite"
    relative = Path("..") / tmp_path.name / "gallery"  # the CLI resolves it as a local scan
    by_ray = scanned(cli, relative, fanned, "--ray", "local")
    assert by_ray == scanned(cli, relative, local)
    assert by_ray["tagged"] == 13 and by_ray["failed"] == 2 and by_ray["to_retry"] == 0
    lines = exported(cli, fanned)
    assert lines == exported(cli, local)
    assert any("copy.png" in line for line in lines)
    assert failures(cli, fanned) == failures(cli, local)
    assert any("bad.png" in line and "truncated" in line for line in failures(cli, fanned))
    again = scanned(cli, gallery, fanned, "--ray", "local")
    assert again["tagged"] == 0 and again["hashed"] == 0  # nothing read, nothing run


def test_a_ray_scan_shipping_the_files_gives_the_same_index(cli, gallery: Path, tmp_path) -> None:
    """`--ship-files`: the driver reads the pictures and sends their bytes; the counts,
    failures (the truncated PNG, the text file) and export are a local scan's."""
    local, shipped = tmp_path / "local.sqlite", tmp_path / "shipped.sqlite"
    relative = Path("..") / tmp_path.name / "gallery"
    by_ray = scanned(cli, relative, shipped, "--ray", "local", "--ship-files", "-b", "2")
    assert by_ray == scanned(cli, relative, local)
    assert exported(cli, shipped) == exported(cli, local)
    assert failures(cli, shipped) == failures(cli, local)
    code, _, err = cli("scan", "--db", str(shipped), "--ship-files", str(relative))
    assert code == 1 and "--ship-files goes with --ray" in err


def test_shipped_bytes_are_decoded_where_the_path_is_not_seen(tmp_path: Path) -> None:
    """A worker given the bytes never opens the path (a node without the gallery): the
    pictures equal those of a worker that reads the file; bytes that are not the content
    decided on are a change, not a picture; a driver's read failure arrives as it was."""
    import numpy as np
    import xxhash

    import indexer
    from indexer.imaging.messages import Skipped, Target, encode
    from indexer.imaging.messages import decode as decoded
    from indexer.pipeline.remote import Decode

    path = tmp_path / "p.png"
    picture(path, (120, 30, 200), size=(30, 20))
    data = path.read_bytes()
    expect = xxhash.xxh3_128_hexdigest(data)
    with indexer.load_model("palette") as model:
        tagger = model.tagger
        decode = Decode([Target(tagger.spec, tagger.height, tagger.width)], 10**8, 30)
    gone = Skipped("vanished", vanished=True)
    rows = {
        "seq": np.arange(4), "wanted": np.ones(4, np.int64),
        "path": np.array([os.fsencode(path), b"/nowhere/p.png", b"/nowhere/q.png",
                          b"/nowhere/r.png"], object),
        "expect": np.array([expect, expect, "0" * 32, expect], object),
        "data": np.array([b"", data, data, b""], object),
        "fault": np.array([b"", b"", b"", encode(gone)], object),
    }  # fmt: skip
    read = decode({k: v[:1] for k, v in rows.items() if k not in ("data", "fault")})
    sent = decode({k: v[1:] for k, v in rows.items()})
    assert read["ok"][0, 0] and sent["ok"][0, 0]
    assert np.array_equal(read["pic0"][0], sent["pic0"][0])
    assert [decoded(why) for why in sent["failed"][1:]] == [
        Skipped("changed since it was read"),
        Skipped("vanished", vanished=True),
    ]


@pytest.mark.parametrize("shipping", [(), ("--ship-files",)], ids=["read", "shipped"])
def test_a_crashing_or_hanging_decoder_on_ray_costs_one_picture(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipping: tuple[str, ...]
) -> None:
    """As in a local scan: the picture that crashes its decoder and the one that hangs it
    past `decode_timeout` fail (to be retried), the rest are tagged, the exit is 1; also
    when the driver ships the bytes."""
    inject_faults(monkeypatch, FAULTS)  # the local scan's decoders
    (tmp_path / "deeptagger.toml").write_text("decode_timeout = 3\n")
    gallery = tmp_path / "gallery"
    for i in range(5):
        picture(gallery / f"good{i}.png", (50 * i, 10, 10))
    fault_pictures(gallery)  # written a moment ago
    local, fanned = tmp_path / "local.sqlite", tmp_path / "ray.sqlite"
    relative = str(Path("..") / tmp_path.name / "gallery")
    runs = {}
    for db, extra in ((fanned, ("--ray", "local", *shipping)), (local, ())):
        code, out, err = cli("scan", "--db", str(db), "--json", *extra, relative)
        assert code == 1, err  # failures to retry: never 0 with less
        runs[db] = json.loads(out)
    assert runs[fanned] == runs[local]
    assert (runs[fanned]["tagged"], runs[fanned]["failed"], runs[fanned]["to_retry"]) == (5, 2, 2)
    assert failures(cli, fanned) == failures(cli, local)
    said = "\n".join(failures(cli, fanned))
    assert "decoder crashed (signal SIGSEGV)" in said and "decoding took over 3 s" in said
    assert exported(cli, fanned) == exported(cli, local)


def _dtindex(home: Path, db: Path, *args: str) -> subprocess.Popen[bytes]:
    """`dtindex --db DB ARGS` in `home`, in a process group of its own."""
    env = {**os.environ, "DTINDEX_CONFIG": str(home / "deeptagger.toml")}
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", "--db", str(db), *args], env=env, cwd=home,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


# Ray's driver runtime ends the process itself (status 1) once the raylet it started is
# gone; its last words go to the driver's log in Ray's session folder, not to stderr
# (ray 2.60: the core worker's plasma connection, or its raylet IPC client).
RAY_ENDED_IT = (b"The connection to the plasma store is failed", b"the local Raylet is dead")


def _ray_ended(driver: int) -> bool:
    """Whether Ray's runtime ended the driver with this pid: its newest driver log says so."""
    logs = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray"
    found = sorted(
        logs.glob(f"session_*/logs/python-core-driver-*_{driver}.log"),
        key=lambda p: p.stat().st_mtime,
    )
    return bool(found) and any(words in found[-1].read_bytes() for words in RAY_ENDED_IT)


TAGGINGS = "SELECT COUNT(*) FROM taggings"
# Who is signalled, and with what, in turn on one index (see the test below).
KILLS = [("group", signal.SIGKILL), ("driver", signal.SIGTERM), ("group", signal.SIGTERM)]


def _kill_a_ray_scan(home: Path, db: Path, whom: str, signum: int) -> None:
    """Start a `--ray local` scan of the gallery and signal it once it has recorded a
    tagging more than the index held: it must end as `whom` and `signum` say, with less."""
    from test_resume import count

    before = count(db, TAGGINGS)
    relative = str(Path("..") / home.name / "gallery")
    victim = _dtindex(home, db, "scan", "--ray", "local", "-b", "2", relative)
    wait_for(lambda: count(db, TAGGINGS) > before or victim.poll() is not None, victim, 180)
    (os.killpg if whom == "group" else os.kill)(victim.pid, signum)
    _, err = victim.communicate(timeout=60)
    said = f"{whom} {signal.Signals(signum).name}: " + err.decode(errors="replace")[-4000:]
    if signum == signal.SIGKILL:
        assert victim.returncode == -signum, said
    elif whom == "driver" or victim.returncode != 1:
        assert victim.returncode == 128 + signum, said
    else:  # Ray's runtime ended the driver once the group's signal stopped its Ray: it
        # may have announced its stop first (a race CI met), but said nothing else
        ours = [line for line in err.splitlines() if line.startswith(b"dtindex: ")]
        assert all(b"finishing the batch in flight" in line for line in ours), said
        assert b"Traceback" not in err, said
        assert _ray_ended(victim.pid), said
    assert count(db, TAGGINGS) < 60, f"{said}\nthe scan finished before it could be killed"


def _descendants_named(ancestor: int, needle: bytes) -> list[int]:
    """Processes below `ancestor` whose command line holds `needle` (Ray names its
    actors' processes after their class: ray::MapWorker(MapBatches(Infer)))."""
    parents: dict[int, int] = {}
    lines: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                lines[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = []
    for pid, line in lines.items():
        up = pid
        while up in parents and up != ancestor:
            up = parents[up]
        if up == ancestor and needle in line:
            found.append(pid)
    return found


def _scan_losing_its_inference_worker(home: Path, db: Path) -> tuple[dict[str, int], int]:
    """A `--ray local` scan whose model actor is SIGKILLed once it has recorded a tagging
    more than the index held; its JSON counts (it must exit 0) and the taggings before."""
    from test_resume import count

    before = count(db, TAGGINGS)
    relative = str(Path("..") / home.name / "gallery")
    scan = _dtindex(home, db, "scan", "--ray", "local", "--json", "-b", "2", relative)
    try:
        actors: list[int] = []

        def infer_running() -> bool:
            if count(db, TAGGINGS) == before:
                return scan.poll() is not None
            actors[:] = _descendants_named(scan.pid, b"MapBatches(Infer)")
            return bool(actors) or scan.poll() is not None

        wait_for(infer_running, scan, timeout=180)
        assert actors and scan.poll() is None, "the scan finished before it could be hit"
        assert count(db, TAGGINGS) < 60
        os.kill(actors[0], signal.SIGKILL)
        out, err = scan.communicate(timeout=300)
    finally:
        if scan.poll() is None:
            os.killpg(scan.pid, signal.SIGKILL)
    assert scan.returncode == 0, err
    counts: dict[str, int] = json.loads(out)  # nothing but the JSON on stdout
    return counts, before


def test_killed_ray_drivers_and_a_lost_worker_resume_to_a_clean_scans_export(
    slow_gallery: tuple[Path, bytes], tmp_path: Path
) -> None:
    """On one index, in turn (each Ray scan costs a Ray start, so the cases share them):
    everything in the driver's process group SIGKILLed; the driver SIGTERMed (as systemd's
    KillMode=mixed sends it: it stops, exit 143); the group SIGTERMed (as
    KillMode=control-group sends it, which also stops the local Ray it started, whose
    runtime then ends the driver with status 1 unless the stop won the race), each once
    taggings are recorded: never 0 with less. Then a scan whose model actor is SIGKILLed
    mid-scan: Ray restarts it and runs its batch again, the scan completes (exit 0, Ray's
    news of the death on stderr, stdout the JSON alone) to what a clean local scan of the
    same gallery exports, nothing tagged twice."""
    from test_resume import count

    home, expected = slow_gallery  # shared: the index is this test's own
    db = tmp_path / "ray.sqlite"
    for whom, signum in KILLS:
        _kill_a_ray_scan(home, db, whom, signum)
    counts, before = _scan_losing_its_inference_worker(home, db)
    assert (counts["tagged"], counts["failed"], counts["to_retry"]) == (60 - before, 0, 0)
    assert count(db, TAGGINGS) == 60 and count(db, "SELECT COUNT(*) FROM files") == 66
    assert _dtindex(home, db, "export", "--model", "slow").communicate()[0] == expected


class _Recorder:
    """A caller of the fan-out that notes, in order, each file looked at and each picture
    scored: the real steps (decoders, Ray, ONNX Runtime) with no index behind them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def look(self, job: bytes) -> bytes:
        self.events.append(("look", job))
        return job

    def decide(self, group):  # type: ignore[no-untyped-def]
        from indexer.imaging.messages import Looked
        from indexer.pipeline.flow import Order

        return [
            Order(job, job, reply.xxh128, (0,)) for job, reply in group if isinstance(reply, Looked)
        ]

    def unprepared(self, order, why) -> None:  # type: ignore[no-untyped-def]
        self.events.append(("unprepared", order.job))

    def scores(self, index, jobs, matrix, embeddings) -> None:  # type: ignore[no-untyped-def]
        assert matrix.shape[0] == len(jobs)
        self.events.extend(("scored", job) for job in jobs)

    def failed(self, index, job, failure) -> None:  # type: ignore[no-untyped-def]
        self.events.append(("failed", job))


def test_results_stream_back_before_the_gallery_is_all_decided(tmp_path: Path) -> None:
    """Decisions stream into the cluster in windows: the first pictures are scored before
    the last files are even looked at, and each picture is scored exactly once."""
    from dataclasses import replace

    import indexer
    from indexer.imaging.workers import DecoderPool
    from indexer.models.runtime import RuntimeOptions
    from indexer.pipeline.fanout import connect

    folder = tmp_path / "gallery"
    for k in range(40):
        picture(folder / f"p{k:02d}.png", (6 * k, 200 - 4 * k, 90), size=(20 + k, 24))
    # Absolute, as a scan's jobs are (it resolves what it is given): workers read them
    paths = [os.fsencode(folder / f"p{k:02d}.png") for k in range(40)]
    recorder = _Recorder()
    with indexer.load_model("palette") as model, DecoderPool(1, 10**8, 30) as pool:
        cluster = replace(connect("local", RuntimeOptions(), 10**8, 30), first_window=8)
        cluster.run([model.tagger], paths, recorder, pool, batch=2)
    kinds = [kind for kind, _ in recorder.events]
    assert sorted(job for kind, job in recorder.events if kind == "scored") == sorted(paths)
    assert kinds.count("look") == 40 and set(kinds) == {"look", "scored"}
    last_look = max(i for i, kind in enumerate(kinds) if kind == "look")
    assert kinds.index("scored") < last_look, "nothing came back before all was decided"
