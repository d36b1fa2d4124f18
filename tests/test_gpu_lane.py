"""The GPU lane (issue 26) wired into the pipeline, run here through its seam: the batch
decoder and the device are parameters (`pipeline.device.device_for`), so the very code a
GPU runs (the hold and flush of a batch's JPEGs, the preparation graph writing into the
model's bound batch, the CPU decoders' rows copied into it, the model run from it by I/O
binding, the refusals sent to the decoder processes) runs on ONNX Runtime's CPU provider
with a decoder of the tests' own, through the real scan, SQLite and `dtindex export`.

The probe is the channel-means model: a picture's three scores are its mean red, green
and blue (0..1). The lane resizes the fully decoded picture where the CPU path decodes
JPEGs DCT-scaled; a picture's means agree within 2 grey levels of 255 (the bound
`test_gpu_decode` holds the preparation itself to), so that is the tolerance on the
stored scores; the export, which rounds to two decimals, must list the same tags with
weights at most one rounding step apart.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_model
from hooks.gpu_lane import PillowDecoder
from PIL import Image

from indexer.config import load_config
from indexer.core import scanning
from indexer.core.tagging import Tagging, definition
from indexer.errors import ModelError, UsageError
from indexer.gallery.scanning import scan_roots
from indexer.models.runtime import RuntimeOptions, Tagger, load
from indexer.pipeline.device import device_for
from indexer.store.engine import open_index

TOLERANCE = 2 / 255


def on_cpu(decoder: PillowDecoder) -> Callable[[Sequence[Tagger]], Any]:
    """The production choice (`device_for`) with the tests' decoder on 'cpu'."""
    return functools.partial(device_for, decoder=lambda device_id: decoder, name="cpu")


def artwork(path: Path, size: tuple[int, int], seed: int, fmt: str, mode: str = "RGB") -> Path:
    """Flat areas and noise, so the means are not trivially a solid colour's."""
    width, height = size
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    pixels[: height // 2, : width // 2] = (seed * 37 % 256, 200, 60)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if seed % 5 == 4:
        exif[0x0112] = 6  # shown a quarter turn from stored
    image.convert(mode).save(path, fmt, quality=92, exif=exif.tobytes())
    return path


def gallery(folder: Path) -> list[Path]:
    """JPEGs to shrink and to grow, turned ones, PNGs, a CMYK JPEG, a truncated JPEG and
    a file that is no picture: the lane's takes and refusals mixed in every batch."""
    sizes = [(64, 48), (5, 7), (30, 30), (200, 120), (9, 40)]
    paths = []
    for i in range(14):
        fmt = "PNG" if i % 4 == 3 else "JPEG"
        suffix = "png" if fmt == "PNG" else "jpg"
        paths.append(artwork(folder / f"{i:02}.{suffix}", sizes[i % 5], i, fmt))
    paths.append(artwork(folder / "cmyk.jpg", (40, 30), 21, "JPEG", "CMYK"))
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(paths[0].read_bytes()[:300])
    (folder / "notes.jpg").write_bytes(b"not a picture at all")
    return [*paths, truncated, folder / "notes.jpg"]


def load_means(tmp_path: Path, batch: int | None, settings: str = "") -> Tagger:
    model = write_model(tmp_path / "m", "means", mean=True, batch=batch,
                        settings="normalize = true\n" + settings)  # fmt: skip
    config = load_config(None)
    tagger = load(definition(str(model), config), RuntimeOptions(cpu=True))
    # The CPU provider's session, marked as one the GPU may decode for: what
    # `choice.gpu_decodes` says of a session on the CUDA provider with nvImageCodec.
    return replace(tagger, gpu_decode="auto")


def scanned(db: Path, folder: Path, tagger: Tagger, batch: int, device: Any) -> dict[str, Any]:
    engine = open_index(str(db))
    try:
        counts = scan_roots(engine, [folder], [tagger], load_config(None), batch, device=device)
    finally:
        engine.dispose()
    return counts.as_dict()


def exported(cli: Any, db: Path) -> dict[tuple[str, str], float]:
    code, out, err = cli("--db", str(db), "export", "--model", "means")
    assert code == 0, err
    rows = [line.split("\t") for line in out.decode().splitlines()]
    return {(sha, tag): float(weight) for sha, tag, weight in rows}


def stored(db: Path) -> dict[tuple[str, int], float]:
    """Every score as stored (the export rounds to two decimals), by content and tag."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT c.sha1, s.tag_idx, s.score FROM scores s JOIN contents c ON c.id = s.content_id"
        ).fetchall()
    return {(sha, tag): score for sha, tag, score in found}


def failures(db: Path) -> list[tuple[str, str]]:
    """Each file's error and each failed tagging's, by path."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT path, error FROM files WHERE error IS NOT NULL UNION ALL "
            "SELECT f.path, t.error FROM taggings t JOIN files f ON f.content_id = t.content_id "
            "WHERE t.status = 'failed'"
        ).fetchall()
    return sorted((bytes(path).decode(), error) for path, error in found)


DECODERS = {
    "takes every JPEG": {},
    "refuses every third": {"refuses": lambda n: n % 3 == 0},
    "fails its first batch": {"fails_batch": lambda n: n == 1},
}


@pytest.mark.parametrize("decoder_kind", sorted(DECODERS))
@pytest.mark.parametrize(("fixed", "batch"), [(None, 4), (4, 3)], ids=["dynamic", "fixed-4"])
def test_a_scan_through_the_gpu_lane_exports_what_the_cpu_path_does(
    cli, tmp_path: Path, decoder_kind: str, fixed: int | None, batch: int
) -> None:
    """Same files tagged, same failures, same tags, scores within TOLERANCE, whichever
    pictures the GPU took, refused, or lost with a failed batch; a fixed batch of 4 fed
    from batches of 3 is padded on the device with the rows after them."""
    folder = tmp_path / "gallery"
    gallery(folder)
    tagger = load_means(tmp_path, fixed)
    decoder = PillowDecoder(**DECODERS[decoder_kind])
    cpu_db, gpu_db = tmp_path / "cpu.sqlite", tmp_path / "gpu.sqlite"
    cpu_counts = scanned(cpu_db, folder, tagger, batch, lambda taggers: None)
    gpu_counts = scanned(gpu_db, folder, tagger, batch, on_cpu(decoder))
    assert gpu_counts == cpu_counts and cpu_counts["tagged"] == 15, cpu_counts
    assert cpu_counts["failed"] == 2  # the truncated JPEG and the file that is no picture
    assert failures(gpu_db) == failures(cpu_db)
    want, got = exported(cli, cpu_db), exported(cli, gpu_db)
    assert sorted(got) == sorted(want) and len(want) >= 15 * 2  # the same tags
    assert max(abs(got[key] - want[key]) for key in want) <= 0.01 + 1e-9  # one rounding step
    want_scores, got_scores = stored(cpu_db), stored(gpu_db)
    assert sorted(got_scores) == sorted(want_scores) and len(want_scores) == 15 * 3
    worst = max(abs(got_scores[key] - want_scores[key]) for key in want_scores)
    assert worst < TOLERANCE, worst
    # The lane really decoded: all 11 RGB JPEGs, or some of them (the rest its refusals).
    assert 0 < decoder.decoded <= 11 and (decoder.decoded == 11) == (
        decoder_kind == "takes every JPEG"
    )


def test_the_lane_keys_each_result_to_its_own_picture(tmp_path: Path) -> None:
    """`dtindex tag`'s run with a decoder that hands back negatives: each JPEG the GPU took
    scores one minus its CPU score, every other picture exactly its CPU score, in order,
    so a row the lane prepared and a row the CPU decoders wrote never trade places.
    (Stretched to the input, not padded: the padding would not be inverted.)"""
    folder = tmp_path / "gallery"
    paths = [str(p) for p in gallery(folder)]
    tagger, config = load_means(tmp_path, None, "pad = stretch\n"), load_config(None)
    decoder = PillowDecoder(refuses=lambda n: n % 4 == 1, invert=True)
    results: dict[str, dict[str, Any]] = {}
    for name, device in (("cpu", lambda taggers: None), ("gpu", on_cpu(decoder))):
        scores: dict[str, Any] = {}
        errors: dict[str, str] = {}

        def took(jobs: list[str], matrix: np.ndarray, scores: dict[str, Any] = scores) -> None:
            scores.update(zip(jobs, matrix, strict=True))

        with Tagging(tagger, config, device=device) as tagging:
            tagging.run(paths, 4, str, took, errors.__setitem__)
        results[name] = {"scores": scores, "errors": errors, "order": list(scores)}
    cpu, gpu = results["cpu"], results["gpu"]
    assert gpu["order"] == cpu["order"] and gpu["errors"] == cpu["errors"]
    inverted = 0
    for path in cpu["order"]:
        want, got = cpu["scores"][path], gpu["scores"][path]
        if np.allclose(got, want, atol=1e-6):
            continue
        assert np.allclose(got, 1 - want, atol=TOLERANCE), (path, got, want)
        inverted += 1
    assert inverted == decoder.decoded and 0 < inverted < len(cpu["order"])
    assert not any(
        path.endswith((".png", "cmyk.jpg")) and not np.allclose(
            gpu["scores"][path], cpu["scores"][path], atol=1e-6
        )
        for path in cpu["order"]
    )  # fmt: skip


def test_ray_decodes_on_the_cpu_and_refuses_decode_gpu() -> None:
    config = load_config(None)
    with pytest.raises(UsageError, match="decode = gpu"):
        scanning.cluster("local", config, RuntimeOptions(decode="gpu"), False)


def test_a_run_of_several_models_decodes_on_the_cpu(tmp_path: Path) -> None:
    tagger = load_means(tmp_path, None)
    decoder = PillowDecoder()
    assert on_cpu(decoder)([tagger]) is not None
    assert on_cpu(decoder)([tagger, tagger]) is None
    assert on_cpu(decoder)([replace(tagger, gpu_decode="cpu")]) is None
    assert device_for([replace(tagger, gpu_decode="cpu")]) is None  # production: no GPU here


def test_a_decoder_that_cannot_start_stops_gpu_and_leaves_auto_on_the_cpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(device_id: int) -> PillowDecoder:
        raise RuntimeError("libnvjpeg.so.13: cannot open shared object file")

    tagger = load_means(tmp_path, None)
    with caplog.at_level("WARNING", logger="dtindex"):
        assert device_for([tagger], broken, "cpu") is None
    assert "nvImageCodec cannot start: libnvjpeg" in caplog.text
    with pytest.raises(ModelError, match="decode = gpu: nvImageCodec cannot start"):
        device_for([replace(tagger, gpu_decode="gpu")], broken, "cpu")


def test_a_jpeg_replaced_between_its_look_and_the_lanes_read_is_left_for_the_next_scan(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo tool saves a picture again (a new file renamed over it, its mtime kept)
    after the scan hashed it and before the lane read it for the GPU: the lane must see
    that the bytes are not the content decided on and leave the file to the CPU decoders,
    which say so; scoring the new bytes under the old content would store a wrong score
    that no later scan corrects. The next scan tags it, and the index then exports what a
    clean scan of the gallery exports."""
    from indexer.gallery.incremental import Indexer

    folder = tmp_path / "gallery"
    paths = [artwork(folder / f"{i}.jpg", (40, 30), i * 5 + 1, "JPEG") for i in range(7)]
    target = paths[3]
    stat = target.stat()
    decide = Indexer.decide

    def saved_after_hashing(self: Indexer, group: list[Any]) -> Any:
        orders = decide(self, group)
        if any(job.path == bytes(target) for job, _ in group) and target.stat().st_size:
            fresh = artwork(tmp_path / "saving" / target.name, (40, 30), 99, "JPEG")
            os.utime(fresh, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            os.replace(fresh, target)  # atomic replace by rename, the mtime kept
        return orders

    tagger = load_means(tmp_path, None)
    db = tmp_path / "index.sqlite"
    decoder = PillowDecoder()
    monkeypatch.setattr(Indexer, "decide", saved_after_hashing)
    first = scanned(db, folder, tagger, 4, on_cpu(decoder))
    monkeypatch.setattr(Indexer, "decide", decide)
    assert (first["tagged"], first["to_retry"], first["failed"]) == (6, 1, 0), first
    assert decoder.decoded == 6  # the replaced file never reached the GPU's decoder
    again = scanned(db, folder, tagger, 4, on_cpu(decoder))
    assert (again["tagged"], again["to_retry"], again["failed"]) == (1, 0, 0), again
    clean = tmp_path / "clean.sqlite"
    scanned(clean, folder, tagger, 4, on_cpu(PillowDecoder()))
    assert exported(cli, db) == exported(cli, clean)
    got, want = stored(db), stored(clean)  # a batch of one sums in another order
    assert sorted(got) == sorted(want) and len(want) == 7 * 3
    assert max(abs(got[key] - want[key]) for key in want) < 1e-5


def test_a_model_that_emits_nan_through_the_lane_fails_the_picture_not_the_scan(
    tmp_path: Path,
) -> None:
    """The lane's results go through the same check as the CPU path's: a picture whose
    score is not a number fails (to retry), the others are tagged, no NaN is stored."""
    from test_truth import nan_model

    folder = tmp_path / "gallery"
    folder.mkdir()
    Image.new("RGB", (24, 16), (0, 0, 0)).save(folder / "black.jpg", quality=95)
    for i in range(3):
        artwork(folder / f"{i}.jpg", (20, 20), i + 1, "JPEG")
    config = load_config(None)
    model = nan_model(tmp_path / "models")
    tagger = replace(load(definition(str(model), config), RuntimeOptions(cpu=True)),
                     gpu_decode="auto")  # fmt: skip
    results = {}
    for name, device in (("cpu", lambda taggers: None), ("gpu", on_cpu(PillowDecoder()))):
        db = tmp_path / f"{name}.sqlite"
        results[name] = (scanned(db, folder, tagger, 2, device), failures(db), stored(db))
    counts, failed, scores = results["gpu"]
    assert (counts["tagged"], counts["failed"], counts["to_retry"]) == (3, 1, 1), counts
    assert [Path(path).name for path, _ in failed] == ["black.jpg"]
    assert "model output is not a number" in failed[0][1]
    assert not any(np.isnan(score) for score in scores.values()) and len(scores) == 9
    assert results["gpu"][:2] == results["cpu"][:2]
