"""Walking roots: symlink loops, and excludes relative to the root from any start folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import picture
from test_watch import Watcher, exported

from indexer.config import ScanConfig
from indexer.gallery.jobs import Counts
from indexer.gallery.plan import plan_paths
from indexer.gallery.walk import Walk
from indexer.store.engine import open_index
from indexer.store.records import Records

FOLLOW = ScanConfig(follow_symlinks=True)


def walked(root: Path, settings: ScanConfig, start: Path | None = None) -> list[str]:
    walk = Walk(os.fsencode(root), settings)
    found = [os.fsdecode(p) for p, _ in walk.files(os.fsencode(start) if start else None)]
    assert len(found) == len(set(found))
    return sorted(os.path.relpath(p, root) for p in found)


def looping_gallery(root: Path) -> list[str]:
    """A gallery whose `sub` links back to the root twice; returns its real pictures."""
    for shade, name in enumerate(("a.png", "sub/b.png", "sub/deeper/c.png")):
        picture(root / name, (200, 40 * shade, 0))  # distinct contents, each tagged
    (root / "sub" / "loop").symlink_to("..")  # relative: the root again
    (root / "sub" / "up").symlink_to(root)  # absolute: the root again
    return ["a.png", "sub/b.png", "sub/deeper/c.png"]


def test_links_to_an_ancestor_do_not_walk_the_tree_again(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    real = looping_gallery(root)
    assert walked(root, FOLLOW) == real
    assert walked(root, FOLLOW, start=root / "sub") == ["sub/b.png", "sub/deeper/c.png"]
    assert walked(root, ScanConfig()) == real  # links not followed at all


def test_followed_links_name_each_folder_once_by_its_real_path(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    picture(root / "z-real" / "x.png")
    (root / "a-alias").symlink_to("z-real")  # sorts first, yet the real path wins
    picture(tmp_path / "elsewhere" / "y.png")
    (root / "m-out").symlink_to(tmp_path / "elsewhere")
    (root / "z-real" / "out-again").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "home").symlink_to(root)
    found = walked(root, FOLLOW)
    assert "z-real/x.png" in found and len(found) == 2  # not a-alias/x.png
    assert {"m-out/y.png", "z-real/out-again/y.png"} & set(found)  # followed, once


def test_scan_counts_each_picture_once_with_follow_symlinks(tmp_path: Path, cli) -> None:
    (tmp_path / "deeptagger.toml").write_text("[scan]\nfollow_symlinks = true\n")
    root = tmp_path / "gallery"
    real = looping_gallery(root)
    code, out, err = cli("scan", "--json", str(root))
    assert code == 0, err
    first = json.loads(out)
    assert first["files"] == first["new"] == first["tagged"] == len(real)
    code, out, err = cli("scan", "--json", str(root))
    assert code == 0, err
    again = json.loads(out)
    assert again["files"] == again["unchanged"] == len(real)
    assert again["new"] == again["moved"] == again["removed"] == 0


def moved_in(root: Path, staging: Path) -> Path:
    """Build `drop/` outside the root, with a file that only `drop/cache/*` excludes."""
    picture(staging / "drop" / "keep.png", (0, 250, 0))
    picture(staging / "drop" / "cache" / "thumb.png", (250, 250, 0))
    picture(staging / "drop" / "cache" / "deep" / "thumb2.png", (0, 250, 250))
    root.mkdir(parents=True, exist_ok=True)
    return (staging / "drop").rename(root / "drop")


EXCLUDE = ScanConfig(exclude=("drop/cache/*",))


def test_excludes_match_paths_relative_to_the_root_from_a_start_folder(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    picture(root / "old.png")
    drop = moved_in(root, tmp_path / "staging")
    assert walked(root, EXCLUDE) == ["drop/keep.png", "old.png"]
    assert walked(root, EXCLUDE, start=drop) == ["drop/keep.png"]
    assert walked(drop, EXCLUDE) == ["cache/deep/thumb2.png", "cache/thumb.png", "keep.png"]


def test_a_folder_moved_in_is_planned_with_the_roots_excludes(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    drop = moved_in(root, tmp_path / "staging")
    engine = open_index(tmp_path / "index.sqlite")
    try:
        with engine.connect() as conn:
            index = Records(conn)
            encoded = os.fsencode(root)
            root_id = index.root_id(encoded, os.stat(root).st_dev)
            counts = Counts()
            plan = plan_paths(index, [os.fsencode(drop)], {encoded: root_id}, EXCLUDE, counts)
    finally:
        engine.dispose()
    assert [job.path for job in plan.reads] == [os.fsencode(drop / "keep.png")]
    assert counts.files == 1


def test_watch_applies_the_roots_excludes_to_a_folder_moved_in(
    tmp_path: Path, mean_model: Path, cli
) -> None:
    (tmp_path / "deeptagger.toml").write_text(
        f'[scan]\nexclude = ["drop/cache/*"]\n[models.means]\nmodel = "{mean_model}"\n'
    )
    root = tmp_path / "gallery"
    picture(root / "first.png", (255, 0, 0))
    watcher = Watcher("-b", "8", str(root))
    try:
        watcher.wait_until(lambda: "watching" in watcher.log())
        drop = moved_in(root, tmp_path / "staging")
        watcher.wait_until(lambda: str(drop / "keep.png") in exported(cli, "path"))
        # Events are handled in order: once a later picture is tagged, the folder is done.
        later = picture(tmp_path / "staging" / "later.png", (0, 0, 255), old=False)
        (root / "later.png").write_bytes(later.read_bytes())
        watcher.wait_until(lambda: str(root / "later.png") in exported(cli, "path"))
    finally:
        assert watcher.terminate() == 0, watcher.log()
    paths = {line.split("\t")[0] for line in exported(cli, "path").splitlines()}
    assert paths == {str(root / name) for name in ("first.png", "drop/keep.png", "later.png")}
