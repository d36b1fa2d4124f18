"""XMP sidecars stay the user's and stay readable under what happens around an export:
a photo tool saving the sidecar while it is merged, a second export writing the same
sidecars, the user's escaped line breaks, tag names XML cannot hold, names near the file
system's limit. Checked through the CLI, real files and a real reader (exiftool)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE
from xml.etree import ElementTree

import pytest
from conftest import picture, write_model
from test_xmp import HIERARCHY, SUBJECT, TAGS_LIST, WARM, exiftool, read_xmp


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """Two plain models with the same tag names (c0, c1, c2), in tmp_path's config."""
    folder = tmp_path / "models"
    means = write_model(folder, "means", mean=True, settings="normalize = true\n")
    twin = write_model(folder, "twin", mean=True, settings="normalize = true\nchannels = bgr\n")
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.means]\nmodel = "{means}"\n[models.twin]\nmodel = "{twin}"\n'
    )
    return tmp_path / "gallery"


def scanned(cli, root: Path, *names: str) -> Path:
    for name in names:
        picture(root / name, WARM)
    code, _, err = cli("scan", str(root))
    assert code == 0, err
    return root


def test_a_name_of_240_bytes_gets_its_sidecar(cli, models: Path) -> None:
    name = "x" * 236 + ".png"  # NAME.xmp and NAME.txt are 244 bytes: legal names
    root = scanned(cli, models, name)
    for fmt, suffix in (("xmp", ".xmp"), ("hydrus", ".txt")):
        code, _, err = cli("export", "--model", "means", "--format", fmt, "--beside")
        assert code == 0, err
        assert (root / (name + suffix)).exists()
    assert read_xmp(root / (name + ".xmp"))[SUBJECT] == ["c0", "c1", "c2"]
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [name, name + ".xmp", name + ".txt", ".dtindex-sidecars"]
    )


# As exiv2 (behind digiKam and darktable) writes them: simple properties as attributes,
# their line breaks and tabs escaped, since an XML reader turns raw ones into spaces.
EXIV2 = b"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmp:Label="line one&#xA;line two"
    photoshop:Headline="a&#x9;tab, a &quot;quote&quot; &amp; a CR LF&#xD;&#xA;end"
    photoshop:Instructions="  two spaces, a lone CR&#xD;then &lt;b&gt;  ">
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">para one&#xD;&#xA;para two&#xD;</rdf:li>
    </rdf:Alt>
   </dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def xml_values(path: Path) -> set[tuple[str, str]]:
    """Every attribute and text that is not blank, as a conforming XML reader (expat, as
    exiv2) gives them, by the name of the attribute or element holding it."""
    found = set()
    for element in ElementTree.parse(path).iter():
        found |= set(element.attrib.items()) | {(element.tag, element.text or "")}
    return {(name, value) for name, value in found if value.strip()}


def test_the_users_escaped_line_breaks_and_tabs_read_back_the_same(cli, models: Path) -> None:
    root = scanned(cli, models, "a.png")
    sidecar = root / "a.png.xmp"
    sidecar.write_bytes(EXIV2)
    before, values = read_xmp(sidecar), xml_values(sidecar)
    assert ("{http://ns.adobe.com/xap/1.0/}Label", "line one\nline two") in values
    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside")
    assert code == 0, err
    after = read_xmp(sidecar)
    assert after[SUBJECT] == ["c0", "c1", "c2"]
    users = {k: v for k, v in before.items() if k not in (SUBJECT, TAGS_LIST, HIERARCHY)}
    assert {k: after[k] for k in users} == users and "line one\nline two" in users.values()
    assert values <= xml_values(sidecar)


def test_a_tag_xml_cannot_hold_is_left_out_and_every_sidecar_parses(
    cli, models: Path, tmp_path: Path
) -> None:
    (tmp_path / "models" / "means.tags").write_text("c0\nc\x011\nc2\n")  # U+0001 in a tag
    root = scanned(cli, models, "a.png", "sub/b.png")
    sidecar = root / "a.png.xmp"
    sidecar.write_bytes(EXIV2)
    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside",
                       "--replace", "c2=c\x7f2\x02")  # fmt: skip
    assert code == 1, err  # less than the export holds: not exit 0
    assert err.count("'c\\x011' holds U+0001, which XML forbids") == 1  # once, not a picture
    assert err.count("'c\\x7f2\\x02' holds U+0002") == 1 and "--exclude" in err
    for path in (sidecar, root / "sub" / "b.png.xmp"):
        written = read_xmp(path)
        assert written[SUBJECT] == written[TAGS_LIST] == ["c0"]
        ElementTree.parse(path)  # well-formed, for every XML reader
    assert read_xmp(sidecar)["XMP-xmp:Label"] == "line one\nline two"  # the user's stays

    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside",
                       "--exclude", "c\x011", "--replace", "c2=c\x7f2")  # fmt: skip
    assert code == 0, err  # U+007F is allowed
    assert read_xmp(sidecar)[SUBJECT] == ["c0", "c\x7f2"]

    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside",
                       "--xmp-prefix", "dtindex/\x01")  # fmt: skip
    assert code == 1 and "without '|' or a control character" in err


def test_a_sidecar_nested_too_deep_to_write_back_is_left_untouched(cli, models: Path) -> None:
    root = scanned(cli, models, "a.png")
    nested = b"<a>" * 5000 + b"</a>" * 5000
    deep = EXIV2.replace(b"</dc:description>", b"</dc:description>" + nested)
    (root / "a.png.xmp").write_bytes(deep)
    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside")
    assert code == 1 and "a.png.xmp: its elements are nested too deep to write back" in err
    assert (root / "a.png.xmp").read_bytes() == deep


def test_a_photo_tool_saving_the_sidecar_during_the_merge_keeps_its_edit(
    cli, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """digiKam saves a rating after dtindex read the sidecar and before it renames its
    merged copy over it: dtindex merges again into what the tool saved."""
    from indexer.export import writing

    root = scanned(cli, models, "a.png", "b.png")
    (root / "a.png.xmp").write_bytes(EXIV2)
    (root / "b.png.xmp").write_bytes(EXIV2)
    create = writing._create_beside
    saved: list[bytes] = []

    def tool_saves_first(target: bytes) -> tuple[bytes, int]:
        if not saved:  # the photo tool: exiftool, saving by replace-by-rename
            saved.append(target)
            subprocess.run([exiftool(), "-q", "-overwrite_original", "-XMP-xmp:Rating=5",
                            os.fsdecode(target)], check=True)  # fmt: skip
        return create(target)

    monkeypatch.setattr(writing, "_create_beside", tool_saves_first)
    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside")
    assert code == 0 and "wrote 2 XMP sidecars" in err, err
    edited = read_xmp(Path(os.fsdecode(saved[0])))
    assert edited["XMP-xmp:Rating"] == 5 and edited[SUBJECT] == ["c0", "c1", "c2"]
    assert edited["XMP-xmp:Label"] == "line one\nline two"
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []

    edits = iter(range(1000))

    def tool_saves_a_every_time(target: bytes) -> tuple[bytes, int]:
        if target.endswith(b"/a.png.xmp"):
            changed = EXIV2.replace(b"line two", b"line %03d" % next(edits))
            Path(os.fsdecode(target)).write_bytes(changed)  # in place, the same size
        return create(target)

    monkeypatch.setattr(writing, "_create_beside", tool_saves_a_every_time)
    code, _, err = cli("export", "--model", "twin", "--format", "xmp", "--beside")
    assert code == 1 and "1 XMP sidecar could not be written" in err, err
    assert f"{root / 'a.png.xmp'}: changed by another program while it was merged" in err
    last = b"line %03d" % (next(edits) - 1)
    assert (root / "a.png.xmp").read_bytes() == EXIV2.replace(b"line two", last)
    assert b"twin\tc2" in (root / "b.png.xmp").read_bytes()  # the others are written
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


def blocked_on(lock: int) -> set[int]:
    """The processes waiting for the flock on the file `lock` is open on (/proc/locks)."""
    inode = os.fstat(lock).st_ino
    waiting = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "->" and fields[2] == "FLOCK" and fields[6].endswith(f":{inode}"):
            waiting.add(int(fields[5]))
    return waiting


def test_two_exports_into_the_same_sidecars_take_turns(cli, models: Path) -> None:
    """Two models' exports (two cron jobs) start while a third writer holds the folder's
    lock: both wait for it, then take turns a sidecar at a time, each merging into what
    the other wrote, so every sidecar ends with both models' keywords."""
    names = [f"p{k}.png" for k in range(8)]
    root = scanned(cli, models, *names)
    held = os.open(root / ".dtindex-sidecars.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # as an export writing there holds it
    export = [sys.executable, "-m", "indexer", "export", "--format", "xmp", "--beside"]
    exports = [
        subprocess.Popen([*export, "--model", m, "--xmp-prefix", f"dtindex/{m}"], stderr=PIPE)
        for m in ("means", "twin")
    ]
    try:
        deadline = time.monotonic() + 60
        while blocked_on(held) != {p.pid for p in exports}:
            assert all(p.poll() is None for p in exports), "an export did not wait its turn"
            assert time.monotonic() < deadline, "the exports never came to the lock"
            with contextlib.suppress(subprocess.TimeoutExpired):
                exports[0].wait(0.01)
    finally:
        os.unlink(root / ".dtindex-sidecars.lock")  # released as an export releases it
        os.close(held)
    for export in exports:
        _, err = export.communicate(timeout=60)
        assert export.returncode == 0 and b"wrote 8 XMP sidecars" in err, err
    done = subprocess.run(
        [exiftool(), "-j", "-XMP-digiKam:TagsList", *(str(root / f"{n}.xmp") for n in names)],
        capture_output=True,
        check=True,
    )
    both = [f"dtindex/{model}/c{k}" for model in ("means", "twin") for k in range(3)]
    for record in json.loads(done.stdout):
        assert sorted(record["TagsList"]) == both, record["SourceFile"]
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []


def test_sidecars_are_written_where_the_file_system_has_no_locks(
    cli, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = scanned(cli, models, "a.png")

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)  # as on a file system without flock
    code, _, err = cli("export", "--model", "means", "--format", "captions", "--beside")
    assert code == 0, err
    code, _, err = cli("export", "--model", "means", "--format", "xmp", "--beside")
    assert code == 0, err
    assert read_xmp(root / "a.png.xmp")[SUBJECT] == ["c0", "c1", "c2"]
    assert (root / "a.txt").read_text() == "c0, c1, c2\n"
    assert sorted(p.name for p in root.iterdir()) == [
        ".dtindex-sidecars",
        "a.png",
        "a.png.xmp",
        "a.txt",
    ]
