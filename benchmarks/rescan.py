"""An unchanged rescan of a large gallery: how long stat'ing and comparing takes.

Builds `count` small files (copies of a few pictures, so the first scan tags little)
in folders of 100, with mtimes in the past, scans once, then times the rescan.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

from PIL import Image


def build(folder: Path, count: int) -> Path:
    marker = folder / f".complete-{count}"
    if marker.exists():
        return folder / "gallery"
    pictures = []
    for i in range(16):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (i * 16, 255 - i * 16, 128)).save(buffer, "PNG")
        pictures.append(buffer.getvalue())
    old = 1_600_000_000 * 10**9
    for i in range(count):
        sub = folder / "gallery" / f"{i // 100:05}"
        if i % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{i:06}.png"
        path.write_bytes(pictures[i % len(pictures)])
        os.utime(path, ns=(old, old))
    marker.touch()
    return folder / "gallery"


def run(folder: Path, count: int) -> dict[str, float]:
    from indexer.cli.main import main

    gallery = build(folder, count)
    db = folder / "index.sqlite"
    for leftover in folder.glob("index.sqlite*"):
        leftover.unlink()
    argv = ["-q", "--config", os.devnull, "--db", str(db), "scan", str(gallery)]
    start = time.perf_counter()
    assert main(argv) == 0
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert main(argv) == 0
    again = time.perf_counter() - start
    print(
        f"rescan of {count} unchanged files: {again:.2f} s (first scan {first:.1f} s)",
        file=sys.stderr,
    )
    return {"files": count, "first_scan_seconds": first, "rescan_seconds": again}
