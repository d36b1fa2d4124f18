"""The world the hunting test plays in: a gallery on disk, the user's own files in it, and
dtindex run in-process (fast) or as processes (to be killed, or to run two at once).

The checks are the promise itself, not a case somebody thought of:
- after a command that said the index is complete (exit 0), every model's export equals
  what a clean scan of the same gallery into a fresh database exports;
- every byte the user wrote in a caption, and every value the user's photo tool wrote in
  a sidecar, reads back the same;
- every sidecar parses, and exiftool reads it back;
- a file export that exited 0 wrote each picture its own file holding that picture's tags.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pgserver
from conftest import hooks_env, save_graph
from hunt_files import caption_path, exiftool, photo_tool_save
from onnx import helper, numpy_helper

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 0), (0, 200, 200), (90, 90, 90)]
# Names a download tool, an archive and a case-insensitive habit give: a second download
# (`image.png.1`), case-only twins, a name that is not a picture by its suffix; JPEGs, which
# the GPU lane decodes (`World.lane`).
NAMES = ["a.png", "A.png", "b.jpg", "c.bmp", "image.png", "image.png.1", "e.bmp", "f.jpeg"]
FOLDERS = ["gallery", "gallery/sub", "gallery/sub/deep", "gallery/Sub2"]
MODELS = {"means": ("c0", "c1", "c2"), "hues": ("red_theme", "green_theme", "blue_theme")}


def picture_format(name: str) -> str:
    """The format a file of this name is written in (by its suffix; PNG by default)."""
    name = name.lower()
    if name.endswith(".bmp"):
        return "BMP"
    return "JPEG" if name.endswith((".jpg", ".jpeg")) else "PNG"


def mean_graph(folder: Path, name: str, tags: Sequence[str]) -> Path:
    """An nhwc model whose scores are the three channel means, 0..1."""
    inits = [numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    nodes = [helper.make_node("ReduceMean", ["input", "axes"], ["scores"], keepdims=0)]
    text = f"name = {name}\nshape = nhwc\nnormalize = true\n"
    return save_graph(folder, name, nodes, inits, ["batch", 8, 8, 3], list(tags), text)


Row = tuple[str, tuple[str, ...], tuple[tuple[str, float], ...]]  # sha1, paths, tags


def normalised(jsonl: bytes) -> list[Row]:
    """An export as a sorted list, so two exports compare whatever their order."""
    rows = []
    for line in jsonl.splitlines():
        record = json.loads(line)
        tags = tuple(sorted(record["tags"].items()))
        rows.append((record["sha1"], tuple(sorted(record["paths"])), tags))
    return sorted(rows)


class World:
    """One gallery, its index, its config, and what the user wrote in it."""

    def __init__(self, base: Path, run: Callable[[Sequence[str]], tuple[int, bytes, str]]):
        self.base = base
        self.cwd = base / "cwd"  # commands run here and name the gallery through '..'
        self.cwd.mkdir(parents=True)
        self.models = {
            name: mean_graph(base / "models", name, tags) for name, tags in MODELS.items()
        }
        self.db = str(base / "index.sqlite")  # or a PostgreSQL database's URL
        self.cluster: pgserver.Cluster | None = None  # where `use_postgres` was called
        self.clean_runs = 0
        self.last_read: tuple[object, dict[Path, tuple[int, str]]] | None = None
        self.bgr = False
        self.roots = ["../gallery"]
        self.user_captions: dict[Path, bytes] = {}
        self.user_xmp: dict[Path, tuple[int, str]] = {}
        self.untagged: dict[Path, set[str]] = {}  # sidecar: tags the user took out of it
        self.run_in_process = run
        self.lane: str | None = None  # the GPU lane's decoder behaviour (hooks/gpu_lane.py)
        self.log: list[str] = []
        self.write_config()
        for folder in FOLDERS[:2]:
            (base / folder).mkdir(parents=True, exist_ok=True)

    # -- the files ----------------------------------------------------------------
    def pictures(self) -> list[Path]:
        """The pictures in the gallery now, in a stable order."""
        found = [
            p
            for p in (self.base / "gallery").rglob("*")
            if p.is_file() and not p.name.endswith((".xmp", ".txt")) and not p.name.startswith(".")
        ]
        return sorted(found)

    def folders(self) -> list[Path]:
        gallery = self.base / "gallery"
        return sorted([gallery, *(p for p in gallery.rglob("*") if p.is_dir())])

    def use_postgres(self, cluster: pgserver.Cluster) -> None:
        """The index, and each clean scan's, is a fresh database on `cluster`."""
        self.cluster = cluster
        self.db = pgserver.new_database(cluster)

    def use_lane(self, behaviour: str) -> None:
        """Every run goes through the GPU lane (on the CPU device, with the tests' decoder
        behaving as `behaviour` says); the lane feeds a run of one model, so one is
        configured."""
        self.lane = behaviour
        self.models = {"means": self.models["means"]}
        self.write_config()

    def configured(self, model: str) -> str:
        """`model` where it is configured, else the one that always is."""
        return model if model in self.models else "means"

    def write_config(self) -> None:
        tables = ""
        for name, path in self.models.items():
            tables += f'[models.{name}]\nmodel = "{path}"\n'
            if name == "means" and self.bgr:
                tables += 'channels = "bgr"\n'
        (self.base / "deeptagger.toml").write_text(tables)

    def env(self, db: str | None = None) -> dict[str, str]:
        lane = hooks_env(DTINDEX_TEST_GPU_LANE=self.lane) if self.lane else {}
        return {
            "DTINDEX_DB": str(db or self.db),
            "DTINDEX_CONFIG": str(self.base / "deeptagger.toml"),
            "XDG_CONFIG_HOME": str(self.base / "xdg-config"),
            "XDG_DATA_HOME": str(self.base / "xdg-data"),
            "XDG_CACHE_HOME": str(self.base / "xdg-cache"),
            **lane,
        }

    # -- running dtindex ----------------------------------------------------------
    def dtindex(self, *argv: str, db: str | None = None) -> tuple[int, bytes, str]:
        """`dtindex ARGV` in this process, in cwd/, on the world's index (or `db`)."""
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env(db))
        here = os.getcwd()
        os.chdir(self.cwd)
        try:
            code, out, err = self.run_in_process(list(argv))
        finally:
            os.chdir(here)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.log.append(f"dtindex {' '.join(argv)} -> {code}\n{err[-3000:]}")
        return code, out, err

    def start(self, *argv: str, log: bool = False) -> subprocess.Popen[bytes]:
        """`dtindex ARGV` as a process in a session (process group) of its own; a
        long-running one (`log`) writes its messages to a file, never a full pipe."""
        env = {**os.environ, **self.env()}
        errors = open(self.base / "watch.log", "ab") if log else subprocess.PIPE  # noqa: SIM115
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "indexer", *argv],
                cwd=self.cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
        finally:
            if log:
                errors.close()

    def finish(self, process: subprocess.Popen[bytes], after: float | None, signum: int) -> int:
        """Wait for `process`; past `after` seconds, send `signum` to its whole group."""
        try:
            process.wait(timeout=after)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signum)
        try:
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        messages = (err or b"").decode(errors="replace")
        self.log.append(f"process {process.args[3:]} -> {process.returncode}\n{messages[-3000:]}")
        return process.returncode

    # -- the promise ----------------------------------------------------------------
    def export(self, model: str, db: str | None = None) -> bytes:
        code, out, err = self.dtindex("export", "--model", model, "--format", "jsonl", db=db)
        assert code == 0, err
        return out

    def clean(self) -> dict[str, list[Row]]:
        """What a scan of the same gallery into a fresh database exports, by model."""
        self.clean_runs += 1
        fresh = str(self.base / f"clean-{self.clean_runs}.sqlite")
        if self.cluster is not None:
            fresh = pgserver.new_database(self.cluster)
        try:
            code, _, err = self.dtindex("scan", "--allow-empty", *self.roots, db=fresh)
            assert code == 0, f"a clean scan failed: {err}"
            return self.exports(db=fresh)
        finally:
            if self.cluster is not None:
                pgserver.drop_database(self.cluster, fresh)
            for leftover in self.base.glob(f"clean-{self.clean_runs}.sqlite*"):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()

    def exports(self, db: str | None = None) -> dict[str, list[Row]]:
        return {model: normalised(self.export(model, db=db)) for model in self.models}

    def check_complete(self) -> None:
        """The index said it is complete: each model's export equals a clean scan's."""
        got, clean = self.exports(), self.clean()
        assert got == clean, self.difference(got, clean)

    def difference(self, got: dict[str, list[Row]], clean: dict[str, list[Row]]) -> str:
        """What the index exports and a clean scan does not, and the reverse, with what
        the last commands said: the finding, readable where a replay is not possible."""
        lines = []
        for model in self.models:
            lines += [f"{model} index only: {r}" for r in got[model] if r not in clean[model]]
            lines += [f"{model} clean only: {r}" for r in clean[model] if r not in got[model]]
        return "\n".join([*lines, "-- the last commands:", *self.log[-6:]])

    def wait_until_complete(self, watcher: subprocess.Popen[bytes], within: float = 30) -> None:
        """A running watch brings each model's export to a clean scan's, within a deadline."""
        clean = self.clean()
        deadline = time.monotonic() + within
        while (got := self.exports()) != clean:
            said = (self.base / "watch.log").read_text()
            assert watcher.poll() is None, said
            assert time.monotonic() < deadline, f"{self.difference(got, clean)}\n{said}"
            with contextlib.suppress(subprocess.TimeoutExpired):
                watcher.wait(0.2)  # wakes at once if the watch dies; else looks again

    def edit_sidecar(self, picture: Path, rating: int, label: str) -> None:
        """The user's photo tool rates a picture: remember what the user wrote."""
        saved = photo_tool_save(picture, rating, label)
        if saved is not None:
            self.user_xmp[saved[0]] = (rating, saved[1])

    def untag_sidecar(self, picture: Path, tag: str) -> None:
        """The user's photo tool takes `tag` out of dc:subject (the field it edits)."""
        sidecar = picture.with_name(picture.name + ".xmp")
        if not sidecar.exists():
            return
        command = ["exiftool", "-q", "-overwrite_original", f"-XMP-dc:Subject-={tag}"]
        if subprocess.run([*command, str(sidecar)], capture_output=True).returncode == 0:
            self.untagged.setdefault(sidecar, set()).add(tag)

    def check_user_files(self) -> None:
        """Every byte the user wrote is still there, and every sidecar parses."""
        for path, content in self.user_captions.items():
            assert path.read_bytes() == content, f"{path}: the user's caption changed"
        sidecars = sorted((self.base / "gallery").rglob("*.xmp"))
        looks = [(p, p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in sidecars]
        if not sidecars or (looks, self.user_xmp) == self.last_read:
            return  # exiftool reads again only where a sidecar or the user's values changed
        read = exiftool(sidecars)
        for record in read.values():
            assert "Error" not in record and "Warning" not in record, record
        for path, (rating, label) in self.user_xmp.items():
            got = read.get(path, {})
            assert (got.get("Rating"), str(got.get("Label"))) == (rating, label), (path, got)
        self.last_read = (looks, dict(self.user_xmp))

    def exported_tags(self, model: str) -> dict[Path, set[str]]:
        """Each present picture's tags in the index's export."""
        tags: dict[Path, set[str]] = {}
        for line in self.export(model).splitlines():
            record = json.loads(line)
            for name in record["paths"]:
                tags[Path(name)] = set(record["tags"])
        return tags

    def check_sidecars(self, models: Sequence[str]) -> None:
        """Each picture's sidecar holds what the export gives it, for every model."""
        expected = {model: self.exported_tags(model) for model in models}
        paths = sorted({p for tags in expected.values() for p in tags})
        read = exiftool([p.with_name(p.name + ".xmp") for p in paths])
        for model in models:
            for path, tags in expected[model].items():
                listed = read.get(path.with_name(path.name + ".xmp"), {}).get("TagsList", [])
                listed = [listed] if isinstance(listed, str) else listed
                prefix = f"dtindex/{model}/"
                mine = {str(t)[len(prefix) :] for t in listed if str(t).startswith(prefix)}
                out = self.untagged.get(path.with_name(path.name + ".xmp"), set())
                assert mine <= tags and tags - mine <= out, (path, model, mine, tags, out)

    def check_captions(self, model: str) -> None:
        """Each tagged picture has a caption of its own (`stem.txt` or `name.ext.txt`)
        holding its tags, unless the user's own file is in the way."""
        claimed: dict[Path, Path] = {}
        for path, tags in self.exported_tags(model).items():
            if not tags:
                continue
            candidates = [path.with_suffix(".txt"), path.with_name(path.name + ".txt")]
            if any(c in self.user_captions for c in candidates):
                continue
            mine = [c for c in candidates if c.exists() and caption_words(c) == tags]
            assert mine, (path, tags, [c for c in candidates if c.exists()])
            assert mine[0] not in claimed, (mine[0], path, claimed.get(mine[0]))
            claimed[mine[0]] = path
        self.check_no_caption_left(model, {caption.parent for caption in claimed})

    def check_no_caption_left(self, model: str, folders: set[Path]) -> None:
        """In each folder the export wrote into, every caption is a present picture's by
        the README's rule, or the user's: none is left behind for a picture gone or
        renamed, or under a name a neighbour changed (`export.leftovers`)."""
        present = self.pictures()
        names = {caption_path(p, present) for p in present}
        for folder in folders:
            for caption in folder.glob("*.txt"):
                if caption not in self.user_captions:
                    assert caption in names, f"{caption}: a caption left behind ({model})"

    def moved_folder(self, source: Path, target: Path) -> None:
        """The user's files went with a renamed folder."""
        for kept in (self.user_captions, self.user_xmp, self.untagged):
            for path in [p for p in kept if p.is_relative_to(source)]:
                kept[target / path.relative_to(source)] = kept.pop(path)  # type: ignore[index]


def caption_words(caption: Path) -> set[str]:
    return {w.strip() for w in caption.read_text().split(",") if w.strip()}


def xmp_export(model: str) -> tuple[str, ...]:
    prefix = f"dtindex/{model}"
    return ("export", "--model", model, "--format", "xmp", "--beside", "--xmp-prefix", prefix)


def kill_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the process's whole group, as a service manager or a cron timeout does."""
    if process.poll() is None:
        os.killpg(process.pid, signum)
