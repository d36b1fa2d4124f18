"""No command exits 0 with less, and a mishap ends in one line, not a traceback (issue 24).

A scan beside another process's claims, pictures saved again during a scan, a root
forgotten under a running watch or scan, out-of-range option values and hostile files,
a model that mixes the pictures of a batch. Through the `dtindex` command, with real
processes, SQLite, ONNX Runtime and files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import FAULTS, age, make_gallery, picture, wait_for
from test_truth_store import (
    CRASH,
    FAR_FUTURE_NS,
    HANG,
    HOST,
    clean_export,
    configure,
    count,
    dtindex,
    export,
    kill_session,
    mark,
    query,
    scan_json,
    start,
)


class Running:
    """A `dtindex` process whose stderr is read as it comes, so a test can wait on a line."""

    def __init__(self, tmp_path: Path, db: str, *args: str, faults: str | None = None) -> None:
        self.process = start(tmp_path, db, *args, faults=faults)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.decode("utf-8", "replace"))

    def said(self, words: str) -> bool:
        return any(words in line for line in self.lines)

    def wait_until_said(self, words: str) -> None:
        wait_for(lambda: self.said(words) or self.process.poll() is not None, self.process)

    def finish(self, timeout: float = 120) -> tuple[int, bytes, str]:
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        code = self.process.wait(timeout)
        self._reader.join(30)
        return code, out, "".join(self.lines)


@contextlib.contextmanager
def running(tmp_path: Path, db: str, *args: str, faults: str | None = None) -> Iterator[Running]:
    run = Running(tmp_path, db, *args, faults=faults)
    try:
        yield run
    finally:
        kill_session(run.process)


def failed_pairs(tmp_path: Path, mean_model: Path, crashing: int) -> tuple[Path, list[tuple]]:
    """A gallery scanned once with `crashing` pictures whose decoder crashed (retried by
    the next scan); the index, and their (model version, content) pairs."""
    configure(tmp_path, {"means": mean_model})
    gallery = tmp_path / "gallery"
    make_gallery(gallery, 6)
    for i in range(crashing):  # aged: tagged by the next scan's pending pass
        path = picture(gallery / f"crash{i}.png", (200, 30 * i, 9))
        age(mark(path, CRASH))
    first = scan_json(tmp_path, "index.sqlite", "gallery", code=1, faults=FAULTS)
    assert first["to_retry"] == crashing, first
    db = tmp_path / "index.sqlite"
    pairs = query(db, "SELECT model_version_id, content_id FROM taggings WHERE status = 'failed'")
    assert len(pairs) == crashing
    return db, pairs


def claim_as(db: Path, token: str, pairs: list[tuple]) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        rows = [(v, c, token, FAR_FUTURE_NS) for v, c in pairs]
        conn.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", rows)
        conn.commit()


# -- 9a. a scan beside another process's claims ------------------------------------------
def test_a_scan_waits_for_pictures_a_live_process_holds_and_takes_them_over_when_it_dies(
    tmp_path: Path, mean_model: Path
) -> None:
    db, pairs = failed_pairs(tmp_path, mean_model, 2)
    token = f"{HOST}:{os.getpid()}:0a11ve000009"  # this test process: its lock is held
    lock = tmp_path / "index.sqlite.claims" / f"{token}.lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    claim_as(db, token, pairs)
    try:
        with running(tmp_path, "index.sqlite", "scan", "--json", "gallery") as scan:
            scan.wait_until_said("waiting for 2 pictures that another dtindex process")
            # The old code exited 0 here ("tagged 0"), two pictures without a result.
            assert scan.process.poll() is None, scan.lines
            os.close(fd)  # the holder dies: its flock is gone, its claims are taken over
            fd = -1
            code, out, err = scan.finish()
    finally:
        if fd >= 0:
            os.close(fd)
    assert code == 0, err
    assert json.loads(out)["tagged"] == 2, err
    assert query(db, "SELECT COUNT(*) FROM claims") == [(0,)]
    assert export(tmp_path, "index.sqlite", "means") == clean_export(tmp_path, "gallery", "means")


def test_pictures_held_by_an_owner_that_cannot_be_judged_are_to_retry(
    tmp_path: Path, mean_model: Path
) -> None:
    """A lock file that cannot be opened (here a folder) says nothing of its owner: the
    scan does not wait out the hour-long lease, it says the index is incomplete."""
    db, pairs = failed_pairs(tmp_path, mean_model, 2)
    token = f"{HOST}:1:0dd0dd0dd0dd"
    (tmp_path / "index.sqlite.claims" / f"{token}.lock").mkdir()
    claim_as(db, token, pairs)
    result = scan_json(tmp_path, "index.sqlite", "gallery", code=1)
    assert (result["tagged"], result["to_retry"]) == (0, 2), result


def test_a_scan_beside_a_scan_killed_mid_way_ends_with_a_complete_index(
    tmp_path: Path, mean_model: Path
) -> None:
    """Two real scans: the first hangs on a picture it claimed; the second waits for it
    and, once the first is killed, takes the claim over and exits 0 with all tagged."""
    configure(tmp_path, {"means": mean_model}, "decode_timeout = 300\n")
    make_gallery(tmp_path / "gallery", 6)
    age(mark(picture(tmp_path / "gallery" / "hang.png", (1, 2, 3)), HANG))
    db = tmp_path / "index.sqlite"
    with running(
        tmp_path, "index.sqlite", "scan", "gallery", faults="UNUSED," + HANG.decode()
    ) as first:
        claimed = "SELECT COUNT(*) FROM claims"
        wait_for(lambda: count(db, claimed) > 0, first.process)  # hang.png among them
        with running(tmp_path, "index.sqlite", "scan", "--json", "gallery") as second:
            second.wait_until_said("that another dtindex process is tagging")
            assert second.process.poll() is None, second.lines  # the old code: exit 0 here
            kill_session(first.process)
            code, out, err = second.finish()
    assert code == 0, err
    assert json.loads(out)["tagged"] >= 1, err  # hang.png at least, taken over
    assert count(db, "SELECT COUNT(*) FROM taggings WHERE status = 'done'") == 7, err
    assert query(db, "SELECT COUNT(*) FROM claims") == [(0,)]
    assert export(tmp_path, "index.sqlite", "means") == clean_export(tmp_path, "gallery", "means")


# -- 9b. pictures saved again during a scan ----------------------------------------------
def test_a_picture_saved_again_during_the_scan_makes_it_exit_1(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.gallery.incremental import Indexer

    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    gallery = tmp_path / "gallery"
    for i in range(3):
        picture(gallery / f"{i}.png", (40 * i, 9, 9))
    saved = picture(gallery / "saved.png", (1, 2, 3))
    decide = Indexer.decide

    def save_after_hashing(self: Indexer, group: list) -> list:
        orders = decide(self, group)
        if any(job.path.endswith(b"saved.png") for job, _ in group):
            picture(saved, (250, 250, 250), old=False)  # the photo tool saves it again
        return orders

    monkeypatch.setattr(Indexer, "decide", save_after_hashing)
    code, out, err = cli("scan", "--json", "gallery/../gallery")
    assert "saved.png: changed since it was read; left for the next scan" in err, err
    assert code == 1, err
    assert "the index is incomplete" in err
    assert json.loads(out)["to_retry"] == 1
    monkeypatch.setattr(Indexer, "decide", decide)
    code, out, err = cli("scan", "--json", "gallery")
    assert code == 0, err
    assert json.loads(out)["tagged"] == 1


def test_a_watch_lets_go_of_a_picture_saved_again_while_it_was_read(
    tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim of a picture left for the next look is released at once: a long-running
    watch held it until it exited, and a scan beside it now waits for such claims."""
    from indexer.config import load_config
    from indexer.gallery.incremental import Indexer
    from indexer.gallery.jobs import Counts
    from indexer.gallery.plan import apply_moves, plan_scan
    from indexer.models.runtime import RuntimeOptions, load
    from indexer.store.engine import open_index

    config = tmp_path / "deeptagger.toml"
    config.write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    saved = picture(tmp_path / "gallery" / "saved.png", (1, 2, 3))
    decide = Indexer.decide

    def save_after_hashing(self: Indexer, group: list) -> list:
        orders = decide(self, group)
        picture(saved, (250, 250, 250), old=False)  # the photo tool saves it again
        return orders

    monkeypatch.setattr(Indexer, "decide", save_after_hashing)
    settings = load_config(config)
    engine = open_index(tmp_path / "index.sqlite")
    tagger = load(settings.models["means"].resolve(), RuntimeOptions())
    indexer = Indexer(engine, [tagger], settings, 4)  # a watch's, kept open between turns
    try:
        counts = Counts()
        plan = plan_scan(indexer.index, [tmp_path / "gallery"], settings.scan, counts)
        apply_moves(indexer.index, plan, counts)
        indexer.process(plan.reads, counts, pending=False)
        assert counts.to_retry == 1
        assert query(tmp_path / "index.sqlite", "SELECT COUNT(*) FROM claims") == [(0,)]
    finally:
        indexer.close()
        engine.dispose()


# -- 12. one line, never a traceback ------------------------------------------------------
@pytest.mark.parametrize(
    "when", ["inf", "1e400", "9999999999999999", "0001-01-01", "-inf", "9999-12-31"]
)
def test_changed_since_out_of_range_is_one_line(
    cli, tmp_path: Path, mean_model: Path, when: str
) -> None:
    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    picture(tmp_path / "gallery" / "a.png")
    assert cli("scan", "gallery")[0] == 0
    code, out, err = cli("export", "--model", "means", f"--changed-since={when}")
    assert (code, out) == (1, b""), err
    assert err.strip().splitlines() == [f"dtindex: --changed-since {when!r} is out of range"]


DEEP = 100_000


def one_line_naming(err: str, path: Path) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and "nested too deeply" in err, err


def test_a_config_nested_too_deeply_is_a_config_error(cli, tmp_path: Path) -> None:
    config = tmp_path / "deeptagger.toml"
    config.write_text("a = " + "[" * DEEP + "]" * DEEP + "\n")
    for command in (("status",), ("scan", "gallery"), ("models",)):
        code, _, err = cli(*command)
        assert code != 0, err
        one_line_naming(err, config.relative_to(tmp_path))  # as found: ./deeptagger.toml


def test_a_json_tag_list_nested_too_deeply_is_a_model_error(cli, tmp_path: Path) -> None:
    from test_families import empty_config, reveal

    folder = tmp_path / "cl_tagger" / "cl_tagger_1_02"
    reveal(folder / "model.onnx", "nchw")
    (folder / "tag_mapping.json").write_text("[" * DEEP + "]" * DEEP)
    code, _, err = cli("--config", str(empty_config(tmp_path)), "model", "add", "cl", str(folder))
    assert code == 2, err
    one_line_naming(err, folder / "tag_mapping.json")


def test_categories_json_nested_too_deeply_is_a_model_error(cli, tmp_path: Path) -> None:
    from conftest import write_model

    model = write_model(tmp_path / "models", "means", mean=True)
    (tmp_path / "models" / "categories.json").write_text("[" * DEEP + "]" * DEEP)
    code, out, err = cli("tag", str(model), str(picture(tmp_path / "a.png")))
    assert (code, out) == (2, b""), err
    one_line_naming(err, tmp_path / "models" / "categories.json")


# -- 14. a model that mixes the pictures of a batch ---------------------------------------
def transposed_means(folder: Path) -> Path:
    """Channel means laid out [tags, batch], the output's shape declared symbolic: every
    shape check passes, and at batch 3 (as many pictures as tags) even the shapes fit."""
    from onnx import TensorProto, helper, numpy_helper, save

    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes")
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["means"], keepdims=0),
        helper.make_node("Transpose", ["means"], ["scores"], perm=[1, 0]),
    ]
    graph = helper.make_graph(
        nodes,
        "transposed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 8, 8, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["rows", "columns"])],
        [axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    save(model, str(folder / "transposed.onnx"))
    (folder / "transposed.tags").write_text("c0\nc1\nc2\n")
    (folder / "transposed.model").write_text("name = transposed\nnormalize = true\n")
    return folder / "transposed.model"


def test_a_model_that_mixes_a_batch_is_refused_when_loaded(cli, tmp_path: Path) -> None:
    model = transposed_means(tmp_path / "models")
    colours = [(250, 0, 0), (250, 250, 0), (250, 250, 250)]  # red, yellow, white
    pictures = [str(picture(tmp_path / f"{i}.png", c)) for i, c in enumerate(colours)]
    code, out, err = cli("tag", "-b", "3", "-t", "0.5", str(model), *pictures)
    # The old code: exit 0, red tagged c0 c1 c2 (the batch's red column) and white only c2.
    assert (code, out) == (2, b""), (out, err)
    assert (
        "depend on the other pictures in its batch" in err
        and str(model.with_suffix(".onnx")) in err
    )
    (tmp_path / "deeptagger.toml").write_text(f'[models.transposed]\nmodel = "{model}"\n')
    code, out, err = cli("scan", "-b", "3", str(tmp_path))
    assert code == 1 and "[tags, batch]" in err, err  # a model error stops a scan: 1


# -- 11. a root forgotten under a running watch or scan -----------------------------------
def test_forget_beside_a_watch_stops_watching_that_root_only(
    tmp_path: Path, mean_model: Path
) -> None:
    configure(tmp_path, {"means": mean_model})
    first, second = tmp_path / "a", tmp_path / "b"
    picture(first / "old.png", (9, 9, 200))
    picture(second / "old.png", (9, 200, 9))
    db = tmp_path / "index.sqlite"
    with running(tmp_path, "index.sqlite", "watch", "--settle", "0.1", "a", "b") as watch:
        watch.wait_until_said("watching")
        code, _, err = dtindex(tmp_path, "index.sqlite", "forget", "a")
        assert code == 0, err
        picture(first / "new.png", (50, 60, 70), old=False)  # its event: the old code died here
        picture(second / "new.png", (70, 60, 50), old=False)
        tagged = "SELECT COUNT(*) FROM taggings WHERE status = 'done'"  # b/new.png's makes 3
        wait_for(lambda: count(db, tagged) >= 3 or watch.process.poll() is not None, watch.process)
        assert watch.process.poll() is None, watch.lines
        assert count(db, tagged) == 3, query(db, "SELECT * FROM taggings")
        watch.process.send_signal(signal.SIGTERM)
        code, _, err = watch.finish()
    assert code == 0, err
    assert f"{first}: forgotten (dtindex forget); no longer watched" in err, err
    assert query(db, "SELECT CAST(path AS TEXT) FROM roots") == [(str(second),)]
    assert count(db, "SELECT COUNT(*) FROM files WHERE CAST(path AS TEXT) LIKE '%/a/%'") == 0
    in_b = "SELECT COUNT(*) FROM files WHERE CAST(path AS TEXT) LIKE '%/b/new.png'"
    assert count(db, in_b) == 1


def test_forget_during_a_scan_fails_that_root_in_one_line(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`forget a` lands after the scan planned its roots, before it records a's files."""
    from indexer.core.places import key
    from indexer.gallery.incremental import Indexer
    from indexer.store.engine import open_index
    from indexer.store.maintenance import forget_roots

    (tmp_path / "deeptagger.toml").write_text(f'[models.means]\nmodel = "{mean_model}"\n')
    for i in range(3):
        picture(tmp_path / "a" / f"{i}.png", (40 * i, 9, 9))
        picture(tmp_path / "b" / f"{i}.png", (9, 40 * i, 9))
    decide, forgot = Indexer.decide, []

    def forget_first(self: Indexer, group: list) -> list:
        if not forgot:
            engine = open_index(tmp_path / "index.sqlite")
            forgot.append(forget_roots(engine, [key("a")]))
            engine.dispose()
        return decide(self, group)

    monkeypatch.setattr(Indexer, "decide", forget_first)
    code, _, err = cli("scan", "a", "b/../b")
    assert forgot and forgot[0].roots == 1
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"dtindex: {tmp_path / 'a'}: forgotten (dtindex forget) while this scan ran; its "
        "files were not indexed (scan it again to index it anew)"
    ), err
    assert "FOREIGN KEY" not in err and "Traceback" not in err
    monkeypatch.setattr(Indexer, "decide", decide)
    code, _, err = cli("scan", "b")  # the index is whole again; a stays forgotten
    assert code == 0, err
    assert query(tmp_path / "index.sqlite", "SELECT COUNT(*) FROM roots") == [(1,)]


def slow_copy(tmp_path: Path, slow_gallery: tuple[Path, bytes], folder: str) -> int:
    """The shared slow gallery (conftest) copied to `folder` with its config (mtimes kept);
    how many files it holds."""
    home, _ = slow_gallery
    (tmp_path / "deeptagger.toml").write_text((home / "deeptagger.toml").read_text())
    shutil.copytree(home / "gallery", tmp_path / folder)
    return len(list((tmp_path / folder).iterdir()))


def test_forget_while_a_scan_tags_fails_that_root_in_one_line(
    tmp_path: Path, slow_gallery: tuple[Path, bytes], mean_model: Path
) -> None:
    """`forget` lands while a scan tags pictures whose files it already knows (a model
    added since): no write of the scan breaks, and the old code said `scan done`, exit 0.
    One picture's decoder hangs until the decode time limit, so the scan is still running
    when the forget commits however loaded the machine is (it raced the scan before); the
    other pictures may all be tagged by then, which is still a scan that has not finished."""
    slow_copy(tmp_path, slow_gallery, "gallery")
    mark(sorted((tmp_path / "gallery").iterdir())[-1], HANG)
    slow = (tmp_path / "deeptagger.toml").read_text()
    configure(tmp_path, {"means": mean_model})
    code, _, err = dtindex(tmp_path, "index.sqlite", "scan", "gallery")
    assert code == 0, err
    (tmp_path / "deeptagger.toml").write_text(
        f'decode_timeout = 15\n{slow}[models.means]\nmodel = "{mean_model}"\n'
    )
    db, done = tmp_path / "index.sqlite", "SELECT COUNT(*) FROM taggings WHERE status = 'done'"
    hang = "UNUSED," + HANG.decode()
    with running(tmp_path, "index.sqlite", "scan", "-b", "1", "gallery", faults=hang) as scan:
        wait_for(lambda: count(db, done) >= 62 or scan.process.poll() is not None, scan.process)
        code, _, err = dtindex(tmp_path, "index.sqlite", "forget", "gallery")
        assert code == 0, err
        assert scan.process.poll() is None, "the scan ended before the forget committed"
        code, _, err = scan.finish()
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (
        f"dtindex: {tmp_path / 'gallery'}: forgotten (dtindex forget) while this scan ran; "
        "its files were not indexed (scan it again to index it anew)"
    ), err
    assert "scan done" not in err and "Traceback" not in err, err
    assert count(db, "SELECT COUNT(*) FROM roots") == 0


def test_forget_while_a_watch_catches_up_goes_on_with_its_other_roots(
    tmp_path: Path, slow_gallery: tuple[Path, bytes]
) -> None:
    """A root forgotten during the catch-up is dropped (said) and the others caught up
    with; the old code ended the watch with exit 1."""
    slow_copy(tmp_path, slow_gallery, "a")
    picture(tmp_path / "b" / "old.png", (9, 200, 9))
    db = tmp_path / "index.sqlite"
    with running(tmp_path, "index.sqlite", "watch", "-b", "1", "a", "b") as watch:
        tagging = "SELECT COUNT(*) FROM taggings WHERE status = 'done'"
        wait_for(lambda: count(db, tagging) >= 2 or watch.process.poll() is not None, watch.process)
        code, _, err = dtindex(tmp_path, "index.sqlite", "forget", "a")
        assert code == 0, err
        watch.wait_until_said("watching")
        assert watch.process.poll() is None, watch.lines
        watch.process.send_signal(signal.SIGTERM)
        code, _, err = watch.finish()
    assert code == 0, err
    assert f"{tmp_path / 'a'}: forgotten (dtindex forget); no longer watched" in err, err
    assert f"watching {tmp_path / 'b'}\n" in err, err
    assert query(db, "SELECT CAST(path AS TEXT) FROM roots") == [(str(tmp_path / "b"),)]
    in_b = "SELECT COUNT(*) FROM files WHERE CAST(path AS TEXT) LIKE '%/b/old.png'"
    assert count(db, in_b) == 1


def test_a_root_forgotten_while_an_earlier_root_is_walked_fails_the_scan(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan g1 g2` walks g1 while `forget g2` commits: g2 is not indexed anew behind the
    forget's back with exit 0 (its root row was made only after g1's walk; found in
    review), but named in one line, exit 1."""
    from indexer.gallery.walk import Walk

    configure(tmp_path, {"means": mean_model})
    picture(tmp_path / "g1" / "a.png", (200, 10, 10))
    picture(tmp_path / "g2" / "b.png", (10, 10, 200))
    assert cli("scan", "g1", "g2")[0] == 0
    picture(tmp_path / "g1" / "new.png", (10, 200, 10), old=False)
    files = Walk.files
    forgot: list[int] = []

    def forget_g2_first(self: Walk, *args: object, **kwargs: object) -> object:
        if not forgot and self.root.endswith(b"g1"):
            forgot.append(cli("forget", "g2")[0])
        return files(self, *args, **kwargs)

    monkeypatch.setattr(Walk, "files", forget_g2_first)
    code, _, err = cli("scan", "g1", "./g2")
    assert forgot == [0] and code == 1, err
    assert f"{tmp_path / 'g2'}: forgotten (dtindex forget) while this scan ran" in err, err
    roots = json.loads(cli("status", "--json")[1])["roots"]
    assert [Path(r["path"]).name for r in roots] == ["g1"], roots


def test_a_root_forgotten_just_before_a_watch_rescans_is_not_made_anew(
    cli, tmp_path: Path, mean_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`forget b` commits between a watch's check for forgotten roots and its periodic
    rescan: the rescan does not make b's row anew (which kept b indexed and watched;
    found in review); the watch drops b, says so, and goes on with a."""
    from indexer.core import Index, WatchOptions
    from indexer.gallery import following

    configure(tmp_path, {"means": mean_model})
    picture(tmp_path / "a" / "red.png", (200, 10, 10))
    picture(tmp_path / "b" / "blue.png", (10, 10, 200))
    assert cli("scan", "a", "b")[0] == 0
    real, calls = following.rescan, []

    def forget_b_first(*args: object, **kwargs: object) -> object:
        calls.append(len(calls))
        if len(calls) == 2:  # the first periodic rescan, just after the check
            assert cli("forget", "b")[0] == 0
        return real(*args, **kwargs)

    monkeypatch.setattr(following, "rescan", forget_b_first)
    stop = threading.Event()

    class StopAfterTheRescan(following.Unheard):
        def rescanned(self, why: str, counts: object) -> None:
            if len(calls) >= 2:
                stop.set()

    roots = [tmp_path / "a", tmp_path / "b"]
    options = WatchOptions(rescan=0.2)
    deadline = threading.Timer(60, stop.set)  # a watch that never rescans ends anyway
    deadline.start()
    with Index.open(str(tmp_path / "index.sqlite"), str(tmp_path / "deeptagger.toml")) as index:
        index.watch(roots, options=options, listener=StopAfterTheRescan(), stop=stop)
        kept = [Path(os.fsdecode(root.path)).name for root in index.status().roots]
    deadline.cancel()
    assert len(calls) == 3 and kept == ["a"], (calls, kept)
