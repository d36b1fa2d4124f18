"""What a gallery's owner and their tools do, as steps of the hunting test (test_hunt.py):
write (also in parts, as a download does), rewrite, rename, hard-link and delete pictures
and folders (case-only renames, atomic replace by rename, same-size same-mtime replacements
where the file system reuses inodes, mtime going backwards), change a setting and undo it,
edit a sidecar or a caption.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from conftest import picture
from hunt_files import caption_path
from hunt_world import FOLDERS, MODELS, NAMES, PALETTE, World, picture_format
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

ARCHIVE_MTIME = 1_500_000_000  # the one mtime an unpacked archive gives its files
LABELS = ["one\ntwo", "a\tb", "cr\r\nlf", "x"]  # as the user types them in a photo tool
picks = st.integers(0, 2**16)
colours = st.sampled_from(PALETTE)


def step(**strategies: st.SearchStrategy[object]) -> Callable[[Callable[..., None]], object]:
    """A rule whose runs are counted by kind (the long hunt reports every kind was tried)."""

    def decorate(function: Callable[..., None]) -> object:
        @functools.wraps(function)
        def counted(self: Owner, **arguments: object) -> None:
            self.tally[function.__name__] += 1
            function(self, **arguments)

        return rule(**strategies)(counted)

    return decorate


class Owner(RuleBasedStateMachine):
    """The owner's side of the hunt: changes to the gallery and the user's own files."""

    world: World
    settled: bool
    tally: Counter[str]

    def __init__(self) -> None:
        super().__init__()
        # Downloads in flight: the open file (a downloader keeps writing to the file it
        # opened, wherever it is moved) and the bytes still to come.
        self.downloads: list[tuple[BinaryIO, bytes]] = []

    def restart_watch(self) -> None:
        """A setting changed: the operator restarts a running watch (it reads it once)."""

    # -- helpers --------------------------------------------------------------------
    def pick(self, index: int) -> Path | None:
        found = self.world.pictures()
        return found[index % len(found)] if found else None

    def changed(self) -> None:
        self.settled = False

    # -- what the owner and their tools do --------------------------------------------
    @step(name=st.sampled_from(NAMES), folder=st.sampled_from(FOLDERS), colour=colours)
    def write(self, name: str, folder: str, colour: tuple[int, int, int]) -> None:
        """A picture saved just now (new, or over an existing one in place)."""
        path = self.world.base / folder / name
        picture(path, colour, fmt=picture_format(name), old=False)
        self.changed()

    @step(index=picks, colour=colours)
    def replace_by_rename(self, index: int, colour: tuple[int, int, int]) -> None:
        """An editor's save: a temporary file renamed over the picture."""
        path = self.pick(index)
        if path is None:
            return
        temporary = path.with_name(".~" + path.name)
        picture(temporary, colour, fmt=picture_format(path.name), old=False)
        os.replace(temporary, path)
        self.changed()

    @step(name=st.sampled_from(NAMES), folder=st.sampled_from(FOLDERS), colour=colours)
    def download_starts(self, name: str, folder: str, colour: tuple[int, int, int]) -> None:
        """A browser saves a picture in place, in parts: the first part now, the rest at
        `download_ends` (a truncated picture meanwhile, seen by scans and a watch)."""
        path = self.world.base / folder / name
        if path.exists():
            return
        whole = picture(self.world.base / "downloading" / name, colour,
                        fmt=picture_format(name), old=False)  # fmt: skip
        data = whole.read_bytes()
        whole.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb")  # noqa: SIM115 - kept open until the download ends
        handle.write(data[: len(data) // 2])
        handle.flush()
        self.downloads.append((handle, data[len(data) // 2 :]))
        self.changed()

    @precondition(lambda self: self.downloads)
    @step()
    def download_ends(self) -> None:
        """The rest of every download in flight arrives, into the file each opened."""
        self.finish_downloads()
        self.changed()

    def finish_downloads(self) -> None:
        for handle, rest in self.downloads:
            handle.write(rest)
            handle.close()
        self.downloads.clear()

    @step(colours=st.lists(colours, min_size=1, max_size=4), in_place=st.booleans())
    def unpack_archive(self, colours: list[tuple[int, int, int]], in_place: bool) -> None:
        """Same-size BMPs with one mtime replace the last set: deleted and written again
        (the file system hands out the freed inodes) or overwritten in place (`cp -p`)."""
        folder = self.world.base / "gallery" / "Sub2"
        folder.mkdir(parents=True, exist_ok=True)
        if not in_place:
            for old in folder.glob("scan*.bmp"):
                old.unlink()
        for k, colour in enumerate(colours):
            path = picture(folder / f"scan{k}.bmp", colour, fmt="BMP", old=False)
            os.utime(path, (ARCHIVE_MTIME, ARCHIVE_MTIME))
        self.changed()

    @step(index=picks)
    def delete(self, index: int) -> None:
        path = self.pick(index)
        if path is not None:
            path.unlink()
            self.changed()

    @step(index=picks, name=st.sampled_from(NAMES), folder=st.sampled_from(FOLDERS))
    def move(self, index: int, name: str, folder: str) -> None:
        path = self.pick(index)
        target = self.world.base / folder / name
        if path is None or target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
        self.changed()

    @step(index=picks)
    def rename_case_only(self, index: int) -> None:
        path = self.pick(index)
        if path is None or path.with_name(path.name.swapcase()).exists():
            return
        path.rename(path.with_name(path.name.swapcase()))
        self.changed()

    @step(index=picks, name=st.sampled_from(NAMES), folder=st.sampled_from(FOLDERS))
    def hard_link(self, index: int, name: str, folder: str) -> None:
        path = self.pick(index)
        target = self.world.base / folder / name
        if path is None or target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
        self.changed()

    @step(index=picks, to=st.sampled_from(["gallery/moved", "gallery/sub/moved", "gallery/SUB"]))
    def rename_folder(self, index: int, to: str) -> None:
        folders = self.world.folders()[1:]
        target = self.world.base / to
        if not folders or target.exists():
            return
        source = folders[index % len(folders)]
        if target.is_relative_to(source) or not target.parent.is_dir():
            return
        source.rename(target)
        self.world.moved_folder(source, target)
        self.changed()

    @step(index=picks, colour=colours)
    def mtime_backwards(self, index: int, colour: tuple[int, int, int]) -> None:
        """Content rewritten, then the mtime set back before the last scan (a restore)."""
        path = self.pick(index)
        if path is None:
            return
        before = path.stat().st_mtime_ns
        picture(path, colour, fmt=picture_format(path.name), old=False)
        os.utime(path, ns=(before - 10**9, before - 10**9))
        self.changed()

    @step(bgr=st.booleans())
    def setting(self, bgr: bool) -> None:
        """A setting changed (a new model version), or changed back."""
        if bgr != self.world.bgr:
            self.world.bgr = bgr
            self.world.write_config()
            self.restart_watch()
            self.changed()

    @step(index=picks, rating=st.integers(1, 5), label=st.sampled_from(LABELS))
    def photo_tool_edit(self, index: int, rating: int, label: str) -> None:
        """The user's photo tool rates a picture in its sidecar."""
        path = self.pick(index)
        if path is None:
            return
        self.world.edit_sidecar(path, rating, label)

    @step(index=picks, tag=st.sampled_from([tag for tags in MODELS.values() for tag in tags]))
    def untag_in_photo_tool(self, index: int, tag: str) -> None:
        """The user takes a wrong tag out of a picture's sidecar: later exports leave it
        out while a model gives it (`export.xmp`)."""
        path = self.pick(index)
        if path is not None:
            self.world.untag_sidecar(path, tag)

    @step(index=picks, text=st.sampled_from(["my own words", "fixed, c0", ""]))
    def caption_by_hand(self, index: int, text: str) -> None:
        """The user writes a picture's caption, or corrects the one dtindex wrote."""
        path = self.pick(index)
        if path is None:
            return
        caption = caption_path(path, self.world.pictures())
        caption.write_bytes(text.encode())
        self.world.user_captions[caption] = text.encode()
