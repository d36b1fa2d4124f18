"""An unchanged rescan of a large gallery: how long stat'ing and comparing takes.

    python -m benchmarks.rescan                      # 100,000 files, plain and mixed, 3 rounds
    python -m benchmarks.rescan --files 10000 --rounds 2

Builds `count` small files (copies of a few pictures, so the first scan tags little)
in folders of 100, with mtimes in the past, scans once, then times the rescan. The
mixed gallery is what sniffing meets (issue 17): every tenth picture has no extension,
and each folder also holds a README (no extension, not a picture: sniffed again by
every scan, since the index keeps no non-pictures) and a sidecar `.xmp` (never opened).
Rescans of the plain and the mixed gallery alternate, in this process.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

OLD_NS = 1_600_000_000 * 10**9


def build(folder: Path, count: int, mixed: bool = False) -> Path:
    kind = "-mixed" if mixed else ""
    gallery = folder / f"gallery{kind}"
    marker = folder / f".complete-{count}{kind}"
    if marker.exists():
        return gallery
    pictures = []
    for i in range(16):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (i * 16, 255 - i * 16, 128)).save(buffer, "PNG")
        pictures.append(buffer.getvalue())
    for i in range(count):
        sub = gallery / f"{i // 100:05}"
        if i % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
            if mixed:
                (sub / "README").write_text("what these pictures are\n")
                (sub / f"{i:06}.xmp").write_text("<x:xmpmeta/>\n")
        path = sub / (f"{i:06}" if mixed and i % 10 == 0 else f"{i:06}.png")
        path.write_bytes(pictures[i % len(pictures)])
        os.utime(path, ns=(OLD_NS, OLD_NS))
    marker.touch()
    return gallery


def _scan(argv: list[str]) -> float:
    from indexer.cli.main import main

    gc.collect()  # the garbage of the scan before is not this one's to collect
    start = time.perf_counter()
    assert main(argv) == 0
    return time.perf_counter() - start


def prepared(folder: Path, count: int, mixed: bool = False) -> tuple[list[str], float]:
    """The argv of a scan of the built gallery into a fresh index, and its first scan's
    seconds (after it, every scan is an unchanged rescan)."""
    gallery = build(folder, count, mixed)
    db = folder / f"index{'-mixed' if mixed else ''}.sqlite"
    for leftover in folder.glob(f"{db.name}*"):
        if leftover.is_file():
            leftover.unlink()
    argv = ["-q", "--config", os.devnull, "--db", str(db), "scan", str(gallery)]
    return argv, _scan(argv)


def run(folder: Path, count: int) -> dict[str, float]:
    argv, first = prepared(folder, count)
    again = _scan(argv)
    print(
        f"rescan of {count} unchanged files: {again:.2f} s (first scan {first:.1f} s)",
        file=sys.stderr,
    )
    return {"files": count, "first_scan_seconds": first, "rescan_seconds": again}


def main_rescan() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dtindex-bench")
    args = parser.parse_args()
    folder = args.work / "rescan"
    folder.mkdir(parents=True, exist_ok=True)
    scans = {name: prepared(folder, args.files, name == "mixed") for name in ("plain", "mixed")}
    seconds: dict[str, list[float]] = {name: [] for name in scans}
    for number in range(args.rounds):
        for name, (argv, _) in scans.items():
            seconds[name].append(_scan(argv))
            print(f"round {number + 1}, {name}: rescan {seconds[name][-1]:.2f} s", flush=True)
    for name, (_, first) in scans.items():
        median = statistics.median(seconds[name])
        print(f"{name}: {args.files:,} files, rescan {median:.2f} s (first scan {first:.1f} s)")


if __name__ == "__main__":
    main_rescan()
