"""XMP sidecars as digiKam, darktable, Lightroom and Immich read them, checked by a real
reader (exiftool): the user's own metadata survives every merge, dtindex removes only the
keywords it wrote, an unchanged export writes nothing, a broken sidecar is left alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import picture, write_model

SUBJECT, TAGS_LIST = "XMP-dc:Subject", "XMP-digiKam:TagsList"
HIERARCHY = "XMP-lr:HierarchicalSubject"
# means: (c0, c1, c2) = the red, green and blue means; twin: the same tags from blue,
# green, red. So (200, 120, 40) scores 0.78, 0.47, 0.16 in means and 0.16, 0.47, 0.78 in twin.
WARM = (200, 120, 40)


def exiftool() -> str:
    found = shutil.which("exiftool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("exiftool is missing; .ci/run installs libimage-exiftool-perl")
        pytest.skip("needs exiftool (apt-get install libimage-exiftool-perl)")
    return found


def read_xmp(path: Path) -> dict[str, object]:
    """What exiftool reads from a sidecar, lists always as lists."""
    done = subprocess.run(
        [exiftool(), "-j", "-G1", "-XMP:all", str(path)], capture_output=True, check=True
    )
    record = json.loads(done.stdout)[0]
    for name in (SUBJECT, TAGS_LIST, HIERARCHY):
        value = record.get(name, [])
        record[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return dict(record)


@pytest.fixture
def gallery(tmp_path: Path, cli) -> Path:
    """Two plain models with the same tag names (c0, c1, c2) and a few warm pictures."""
    folder = tmp_path / "models"
    means = write_model(folder, "means", mean=True, settings="normalize = true\n")
    twin = write_model(folder, "twin", mean=True, settings="normalize = true\nchannels = bgr\n")
    (tmp_path / "deeptagger.toml").write_text(
        f'[models.means]\nmodel = "{means}"\n[models.twin]\nmodel = "{twin}"\n'
    )
    root = tmp_path / "gallery"
    picture(root / "a.png", WARM)
    picture(root / "sub" / "b.png", (250, 250, 20))
    picture(root / "disk" / "inner.png", WARM)
    return root


def export_xmp(cli, *args: str, model: str = "means", code: int = 0) -> str:
    got, out, err = cli("export", "--model", model, "--format", "xmp", *args)
    assert got == code, err
    assert out == b""  # files only: nothing on stdout
    return err


def exported_tags(cli, model: str, *args: str) -> dict[str, list[str]]:
    """Each file's tags as `export --format jsonl` gives them, by descending score."""
    code, out, err = cli("export", "--model", model, "--format", "jsonl", *args)
    assert code == 0, err
    by_path: dict[str, list[str]] = {}
    for line in out.splitlines():
        record = json.loads(line)
        tags = sorted(record["tags"], key=lambda t: -record["tags"][t])
        by_path.update({path: tags for path in record["paths"]})
    return by_path


def state(path: Path) -> tuple[bytes, int, int]:
    status = path.stat()
    return path.read_bytes(), status.st_mtime_ns, status.st_ino


def test_merge_keeps_the_users_metadata_and_removes_only_dtindex_keywords(
    cli, gallery: Path
) -> None:
    mine = gallery / "a.png.xmp"
    subprocess.run(
        [exiftool(), "-q", "-o", str(mine), "-XMP-dc:Title=Sunset", "-XMP-xmp:Rating=4",
         "-XMP-dc:Description=by hand", "-XMP-dc:Subject=holiday", "-XMP-dc:Subject=c0",
         "-XMP-digiKam:TagsList=People/Me", "-XMP-lr:HierarchicalSubject=People|Me"],
        check=True,
    )  # fmt: skip
    users = {k: v for k, v in read_xmp(mine).items() if k.startswith("XMP-")}
    code, _, err = cli("scan", str(gallery))
    assert code == 0, err

    export_xmp(cli, "--beside", "-t", "0.3")
    merged = read_xmp(mine)
    for name in ("XMP-dc:Title", "XMP-xmp:Rating", "XMP-dc:Description", "XMP-x:XMPToolkit"):
        assert merged[name] == users[name]
    assert merged[SUBJECT] == ["holiday", "c0", "c1"]  # c0 was the user's already
    assert merged[TAGS_LIST] == ["People/Me", "c0", "c1"]
    assert merged[HIERARCHY] == ["People|Me", "c0", "c1"]
    made = read_xmp(gallery / "sub" / "b.png.xmp")  # a new sidecar: the export, exactly
    expected = exported_tags(cli, "means", "-t", "0.3")[str(gallery / "sub" / "b.png")]
    assert made[SUBJECT] == made[TAGS_LIST] == made[HIERARCHY] == expected == ["c0", "c1"]

    before = {p: state(p) for p in (mine, gallery / "sub" / "b.png.xmp")}
    err = export_xmp(cli, "--beside", "-t", "0.3")  # the same settings again: no file changes
    assert {p: state(p) for p in before} == before and "already up to date" in err

    export_xmp(cli, "--beside", "-t", "0.6")  # c1 no longer passes
    merged = read_xmp(mine)
    assert (merged[SUBJECT], merged[TAGS_LIST]) == (["holiday", "c0"], ["People/Me", "c0"])
    assert state(mine)[2] != before[mine][2]  # replaced by a rename, not rewritten in place
    err = export_xmp(cli, "--beside", "-t", "0.99")  # nothing passes: dtindex's c0 goes too
    merged = read_xmp(mine)
    assert merged[SUBJECT] == ["holiday", "c0"]  # but the user's own c0 stays
    assert (merged[TAGS_LIST], merged[HIERARCHY]) == (["People/Me"], ["People|Me"])
    assert merged["XMP-dc:Title"] == "Sunset" and merged["XMP-xmp:Rating"] == 4
    assert "wrote 1 XMP sidecar" in err  # dtindex's keywords left the user's,
    assert "removed 2 XMP sidecars that dtindex made" in err  # and the two it made went
    assert "2 pictures got no new XMP sidecar: no tag passed" in err  # a.png = inner.png
    assert not list(gallery.rglob(".*.tmp"))


def test_a_keyword_the_user_takes_out_stays_out_until_put_back(cli, gallery: Path) -> None:
    """The user takes a wrong tag out of dc:subject (exiftool, as a photo tool that edits
    that field alone): every later export, of that model or another giving the tag,
    leaves it out of that field; the old code put it back on each cron run, exit 0. The
    other fields, which the user did not touch, keep it. Put back by the user, it is the
    user's: no export removes it, even once no model gives it."""
    code, _, err = cli("scan", "gallery/sub/..")  # the root, named through `..`
    assert code == 0, err
    export_xmp(cli, "--beside", "-t", "0.3")
    mine = gallery / "a.png.xmp"
    assert read_xmp(mine)[SUBJECT] == ["c0", "c1"]
    exif = [exiftool(), "-q", "-overwrite_original"]
    subprocess.run([*exif, "-XMP-dc:Subject-=c1", str(mine)], check=True)

    export_xmp(cli, "--beside", "-t", "0.3")
    merged = read_xmp(mine)
    assert merged[SUBJECT] == ["c0"] and merged[TAGS_LIST] == ["c0", "c1"], merged
    assert read_xmp(gallery / "sub" / "b.png.xmp")[SUBJECT] == ["c0", "c1"]  # not edited
    before = state(mine)
    err = export_xmp(cli, "--beside", "-t", "0.3")
    assert state(mine) == before and "already up to date" in err, err
    export_xmp(cli, "--beside", "-t", "0.3", model="twin")  # twin gives c1 and c2
    assert read_xmp(mine)[SUBJECT] == ["c0", "c2"]
    export_xmp(cli, "--beside", "-t", "0.6")  # means no longer gives c1; twin does
    export_xmp(cli, "--beside", "-t", "0.3", model="twin")
    assert "c1" not in read_xmp(mine)[SUBJECT]

    subprocess.run([*exif, "-XMP-dc:Subject+=c1", str(mine)], check=True)  # put back
    export_xmp(cli, "--beside", "-t", "0.99", model="twin")
    export_xmp(cli, "--beside", "-t", "0.99")  # no model gives c1 now
    merged = read_xmp(mine)
    assert "c1" in merged[SUBJECT] and "c1" not in merged[TAGS_LIST], merged


def test_models_share_a_sidecar_under_their_own_hierarchy(cli, gallery: Path) -> None:
    code, _, err = cli("scan", str(gallery), str(gallery / "disk"))  # nested roots
    assert code == 0, err
    out = "elsewhere/../xmp"  # relative, through `..`
    export_xmp(cli, "--out", out, "--xmp-prefix", "dtindex/means", "-t", "0.3")
    export_xmp(cli, "--out", out, "--xmp-prefix", "/dtindex/twin/", "-t", "0.3", model="twin")
    inner = read_xmp(Path("xmp") / "disk" / "inner.png.xmp")  # a folder per root
    assert inner[SUBJECT] == ["c0", "c1", "c2"]  # flat: means c0 c1, then twin's c2
    assert inner[TAGS_LIST] == ["dtindex/means/c0", "dtindex/means/c1",
                                "dtindex/twin/c2", "dtindex/twin/c1"]  # fmt: skip
    assert inner[HIERARCHY] == [t.replace("/", "|") for t in inner[TAGS_LIST]]
    assert read_xmp(Path("xmp") / "gallery" / "a.png.xmp")[SUBJECT] == ["c0", "c1", "c2"]
    assert not (gallery / "a.png.xmp").exists() and not Path("elsewhere").exists()

    export_xmp(cli, "--out", out, "--xmp-prefix", "dtindex/means", "-t", "0.99")
    inner = read_xmp(Path("xmp") / "disk" / "inner.png.xmp")
    assert inner[SUBJECT] == ["c1", "c2"]  # c1: twin wrote it too, so it stays
    assert inner[TAGS_LIST] == ["dtindex/twin/c2", "dtindex/twin/c1"]


def test_a_sidecar_that_is_not_xmp_is_left_untouched_and_reported(
    cli, gallery: Path, tmp_path: Path
) -> None:
    picture(gallery / "good.png", WARM)
    code, _, err = cli("scan", str(gallery))
    assert code == 0, err
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    broken = {
        gallery / "a.png.xmp": b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed>",
        gallery / "disk" / "inner.png.xmp": (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://%s">]>'
            b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&e;</x:xmpmeta>" % str(secret).encode()
        ),
        gallery / "sub" / "b.png.xmp": b"<html><body>not XMP</body></html>",
    }
    for path, data in broken.items():
        path.write_bytes(data)
    err = export_xmp(cli, "--beside", code=1)
    for path, data in broken.items():
        assert path.read_bytes() == data and str(path) in err
    assert "not well-formed" in err and "DOCTYPE" in err and "no x:xmpmeta" in err
    assert "3 XMP sidecars could not be written" in err
    assert read_xmp(gallery / "good.png.xmp")[SUBJECT] == ["c0", "c1", "c2"]  # others written

    (gallery / "a.png.xmp").write_bytes(
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf="
        b"'http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description rdf:about=''"
        b" xmlns:dc='http://purl.org/dc/elements/1.1/' dc:subject='one value'/>"
        b"</rdf:RDF></x:xmpmeta>"
    )
    err = export_xmp(cli, "--beside", code=1)
    assert "subject is a single value, not a list" in err


DARKTABLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmp:Rating="2"
    darktable:xmp_version="5"
    darktable:history_end="1">
   <!-- a comment the user's tool left -->
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:operation="exposure" darktable:enabled="1" darktable:params="0000"/>
    </rdf:Seq>
   </darktable:history>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>darktable|format|png</rdf:li>
    </rdf:Bag>
   </dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def test_every_other_field_of_a_darktable_sidecar_reads_back_the_same(cli, gallery: Path) -> None:
    sidecar = gallery / "a.png.xmp"
    sidecar.write_bytes(DARKTABLE)
    before = read_xmp(sidecar)
    code, _, err = cli("scan", str(gallery))
    assert code == 0, err
    export_xmp(cli, "--beside")
    after = read_xmp(sidecar)
    assert after[SUBJECT] == ["darktable|format|png", "c0", "c1", "c2"]
    ours = {SUBJECT, TAGS_LIST, HIERARCHY}
    kept = {k: v for k, v in after.items() if k not in ours and not k.startswith("XMP-dtindex")}
    assert kept == {k: v for k, v in before.items() if k not in ours}
    text = sidecar.read_bytes()
    assert text.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<x:xmpmeta')
    assert b"<!-- a comment the user's tool left -->" in text and b"darktable:params" in text


def test_a_sidecar_dtindex_made_goes_when_no_tag_passes_and_the_users_stay(
    cli, gallery: Path
) -> None:
    """A sidecar dtindex created is removed once it would hold nothing but dtindex's
    bookkeeping; one the user had before (even an empty packet), and one dtindex made
    that a photo tool has since written a rating into, stay."""
    users_empty = gallery / "a.png.xmp"
    users_empty.write_bytes(
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf="
        b"'http://www.w3.org/1999/02/22-rdf-syntax-ns#'/></x:xmpmeta>\n"
    )
    code, _, err = cli("scan", str(gallery))
    assert code == 0, err
    export_xmp(cli, "--beside", "-t", "0.3")
    made, rated = gallery / "sub" / "b.png.xmp", gallery / "disk" / "inner.png.xmp"
    assert read_xmp(made)[SUBJECT] == read_xmp(rated)[SUBJECT] == ["c0", "c1"]
    subprocess.run(
        [exiftool(), "-q", "-overwrite_original", "-XMP-xmp:Rating=3", str(rated)], check=True
    )
    err = export_xmp(cli, "--beside", "-t", "0.99")  # no tag passes any more
    assert not made.exists() and not list(gallery.rglob(".*.tmp"))
    assert read_xmp(rated)["XMP-xmp:Rating"] == 3 and read_xmp(rated)[SUBJECT] == []
    assert users_empty.exists() and read_xmp(users_empty)[SUBJECT] == []
    assert "removed 1 XMP sidecar that dtindex made" in err and "wrote 2 XMP sidecars" in err
    assert os.listdir(gallery / "sub") == ["b.png"]  # no lock left either
    export_xmp(cli, "--beside", "-t", "0.3")  # a new one is dtindex's again
    assert read_xmp(made)[SUBJECT] == ["c0", "c1"]
