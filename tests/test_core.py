"""`indexer.Index` from Python: each method on a real index, a root given with `~`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from conftest import picture
from test_similar import COLOURS, embedding_model

from indexer.core import Index, Rules, WatchOptions
from indexer.errors import UsageError
from indexer.export.selection import Edits
from indexer.gallery.headway import Headway
from indexer.gallery.jobs import Counts


@pytest.fixture
def home(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder holding ~/gallery, scanned from Python with a model that stores
    embeddings; the `cli` fixture's private XDG folders and no user config."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name, colour in COLOURS.items():
        picture(home / "gallery" / f"{name}.png", colour)
    embedding_model(tmp_path)
    with opened(tmp_path) as index:
        assert index.scan(["~/gallery"]).tagged == 6
    return home


def opened(tmp_path: Path) -> Index:
    return Index.open("~/index.sqlite", tmp_path / "deeptagger.toml")


class Heard:
    """A progress listener that keeps what it heard."""

    def __init__(self) -> None:
        self.updates: list[int] = []
        self.done_calls = 0

    def update(self, counts: Counts, headway: Headway) -> None:
        self.updates.append(counts.tagged)

    def done(self) -> None:
        self.done_calls += 1


def test_scan_counts_as_scan_json_with_progress_and_stop(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for name, colour in COLOURS.items():
        picture(home / "gallery" / f"{name}.png", colour)
    config = embedding_model(tmp_path)
    code, out, err = cli("--db", str(tmp_path / "cli.sqlite"), "--config", str(config),
                         "scan", "--json", "-b", "2", str(home / "gallery"))  # fmt: skip
    assert code == 0, err
    heard = Heard()
    stop = threading.Event()
    with opened(tmp_path) as index:
        counts = index.scan(["~/gallery"], models=["emb"], batch=2, progress=heard, stop=stop)
        assert counts.as_dict() == json.loads(out)  # what `dtindex scan --json` prints
        assert heard.updates[-1] == 6 and heard.done_calls == 1
        assert index.status().roots[0].scanned_ns is not None
        assert index.scan().unchanged == 6  # the indexed roots
        stop.set()
        picture(home / "gallery" / "late.png", (1, 2, 3), old=False)
        assert index.scan(stop=stop).tagged == 0  # stopped before any batch


def test_status_counts_the_roots_and_pictures(home: Path, tmp_path: Path) -> None:
    with opened(tmp_path) as index:
        status = index.status()
    assert status.database == str(home / "index.sqlite")
    assert [(r.path, r.files) for r in status.roots] == [(bytes(home / "gallery"), 6)]
    assert (status.files, status.contents, status.failed) == (6, 6, 0)


def test_show_and_similar_take_a_path_with_a_tilde(home: Path, tmp_path: Path) -> None:
    with opened(tmp_path) as index:
        shown = index.show("~/gallery/red.png", threshold=0.5)
        near = index.similar("~/gallery/red.png", n=2)
    assert shown.path == bytes(home / "gallery" / "red.png") and shown.sha1
    assert [r.model for r in shown.results] == ["emb"] and shown.results[0].tags
    assert all(tag.score > 0.5 for tag in shown.results[0].tags)
    assert [Path(n.path.decode()).name for n in near] == ["dark-red.png", "orange.png"]
    assert near[0].score > 0.99


def test_search_finds_what_the_scores_say(home: Path, tmp_path: Path) -> None:
    """t0 and t2 score the blue and red channels (0..255) of the first pixel."""
    gallery = home / "gallery"
    with opened(tmp_path) as index:
        found = index.search("t0 t2")
        assert found == sorted(
            bytes(gallery / f"{n}.png") for n in ("blue", "dark-red", "green", "red")
        )
        assert index.search("-t0", rules=Rules(threshold=0.5)) == [bytes(gallery / "orange.png")]
        assert len(index.search("t0 t2", any_of=True)) == 6
        with pytest.raises(UsageError, match="has no tag 'nope'"):
            index.search("nope")
        with pytest.raises(UsageError, match="the general threshold applies to tag lists"):
            index.search("t0", rules=Rules(categories={"general": 0.5}))


def test_forget_and_prune_from_python(home: Path, tmp_path: Path) -> None:
    with opened(tmp_path) as index:
        with pytest.raises(UsageError):
            index.forget(["~/elsewhere"])  # not indexed: nothing is removed
        forgotten = index.forget(["~/gallery/../gallery"])
        assert (forgotten.roots, forgotten.files) == (1, 6)
        assert forgotten.root_paths == (bytes(home / "gallery"),)
        pruned = index.prune(vacuum_after=True)
        assert pruned.contents == 6 and pruned.scores > 0
        status = index.status()
        assert (status.roots, status.files, status.contents) == ((), 0, 0)


def test_models_lists_versions_and_coverage(home: Path, tmp_path: Path) -> None:
    with opened(tmp_path) as index:
        found = index.models()
    emb, palette = found.models
    assert (emb.name, emb.scan, emb.error) == ("emb", True, None)
    assert emb.coverage is not None and (emb.coverage.present, emb.coverage.done) == (6, 6)
    assert palette.name == "palette" and not palette.scan
    assert [(v.model, v.version) for v in found.stored] == [("emb", emb.version)]
    with Index.open(tmp_path / "none.sqlite", tmp_path / "deeptagger.toml") as index:
        assert index.models().models[0].coverage is None  # no index: nothing created
    assert not (tmp_path / "none.sqlite").exists()


def test_export_gives_records_and_writes_files(home: Path, tmp_path: Path) -> None:
    gallery = home / "gallery"
    with opened(tmp_path) as index:
        records = list(index.export(rules=Rules(threshold=0.5)))
        by_name = {Path(r.paths[0].decode()).name: r for r in records}
        assert set(by_name) == {f"{name}.png" for name in COLOURS}
        red = by_name["red.png"]
        assert red.roots == (bytes(gallery),) and len(red.sha1) == 40
        shown = index.show(gallery / "red.png", 0.5).results[0].tags
        assert {t.tag for t in red.tags} == {t.tag for t in shown}
        assert all(r.paths == () for r in index.export(with_paths=False))
        written = index.write_files("captions", out="~/captions", edits=Edits(["t0"], [], 3))
        assert (written.written, written.failed, written.complete) == (6, 0, True)
        caption = (home / "captions" / "red.txt").read_text()
        assert len(caption.split(", ")) == 3 and "t0" not in caption.split(", ")
        assert (
            index.write_files("captions", out="~/captions", edits=Edits(["t0"], [], 3)).unchanged
            == 6
        )
        with pytest.raises(UsageError, match="has tagged nothing"):
            index.export("nope")  # checked before the first record


def test_the_readmes_library_example_runs(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """The README's `Index` example, as written, but for the model's name and tags."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    library = readme.split("## Library", 1)[1]
    example = next(b for b in library.split("```python\n")[1:] if "Index.open" in b)
    code = example.split("```", 1)[0]
    code = code.replace('"wd3"', '"emb"').replace("1girl blue_hair -solo", "t0 t2")
    code = code.replace("a.png", "red.png")
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    embedding_model(home)  # ~/deeptagger.toml
    gallery = home / "gallery"
    for name, colour in COLOURS.items():
        picture(gallery / f"{name}.png", colour)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    printed = capsysbinary.readouterr().out.decode().splitlines()
    exported, found, near = printed[:6], printed[6:-5], printed[-5:]
    assert all(len(line.split()[0]) == 40 and "'t" in line for line in exported)
    names = ("blue", "dark-red", "green", "red")
    assert found == [repr(bytes(gallery / f"{n}.png")) for n in names]
    assert near[0].startswith("1.000 ") and "dark-red.png" in near[0]
    assert len(list((home / "captions").glob("*.txt"))) == 6


def test_the_readmes_watch_example_runs(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `watch` example, as written, in a thread: it catches up with
    ~/gallery, tags a picture that arrives, stops after that batch and returns the totals;
    its reconcile marked the root scanned."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    library = readme.split("## Library", 1)[1]
    example = next(b for b in library.split("```python\n")[1:] if ".watch(" in b)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    embedding_model(home)  # ~/deeptagger.toml
    gallery = home / "gallery"
    picture(gallery / "red.png", COLOURS["red"])
    heard: list[str] = []
    watching = threading.Event()

    def said(*words: object) -> None:
        heard.append(" ".join(map(str, words)))
        if words and words[0] == "watching":
            watching.set()

    namespace: dict[str, object] = {"__name__": "__main__", "print": said}
    failed: list[BaseException] = []

    def run() -> None:
        try:
            exec(compile(example.split("```", 1)[0], "README.md", "exec"), namespace)
        except BaseException as exc:  # reported by the test's thread
            failed.append(exc)
            watching.set()

    started = time.time_ns()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert watching.wait(60) and not failed, (heard, failed)
        picture(gallery / "blue.png", COLOURS["blue"], old=False)
        thread.join(60)
        assert not thread.is_alive() and not failed, (heard, failed)
    finally:
        stop = namespace.get("stop")
        if isinstance(stop, threading.Event):
            stop.set()
        thread.join(30)
    caught_up = json.loads(heard[0].split(" ", 2)[2].replace("'", '"'))
    assert heard[0].startswith("caught up") and caught_up["tagged"] == 1, heard
    assert heard[1:3] == [f"watching {gallery}", "1 new, 1 tagged"], heard
    totals = json.loads(heard[3].replace("'", '"'))
    assert (totals["new"], totals["tagged"]) == (2, 2), heard
    with Index.open("~/index.sqlite", "~/deeptagger.toml") as index:
        (root,) = index.status().roots
        with pytest.raises(UsageError, match="must be positive"):  # before a model loads
            index.watch(options=WatchOptions(rescan=0))
    assert root.path == bytes(gallery) and root.scanned_ns is not None
    assert root.scanned_ns >= started
