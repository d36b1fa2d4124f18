"""An unchanged rescan of a large gallery: how long stat'ing and comparing takes.

    python -m benchmarks.rescan                      # 100,000 files, plain and mixed, 3 rounds
    python -m benchmarks.rescan --files 10000 --rounds 2
    python -m benchmarks.rescan --files 1000000 --per-folder 1000 --kinds plain

Builds `count` small files (copies of a few pictures, so the first scan tags little)
in folders of `--per-folder` (100), with mtimes in the past, scans once, then times the
rescans. The mixed gallery is what sniffing meets (issue 17): every tenth picture has no
extension, and each folder also holds a README (no extension, not a picture: sniffed
again by every scan, since the index keeps no non-pictures) and a sidecar `.xmp` (never
opened). `--reuse-index` keeps an index a run before left (built by the same gallery
options), skipping the first scan: a million files take minutes to hash. Rescans of the
kinds alternate, in this process; each round prints its wall
and CPU seconds (user + system, decoder processes included): the CPU figure is the one
to compare on a machine other work shares. Last, one rescan of each kind runs as a
fresh `python -m indexer scan` (imports included), for its CPU and peak memory.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

OLD_NS = 1_600_000_000 * 10**9
KINDS = ("plain", "mixed")


def build(folder: Path, count: int, mixed: bool = False, per_folder: int = 100) -> Path:
    kind = "-mixed" if mixed else ""
    size = "" if per_folder == 100 else f"-{per_folder}"  # the gallery of earlier runs
    gallery = folder / f"gallery{kind}{size}"
    marker = folder / f".complete-{count}{kind}{size}"
    if marker.exists():
        return gallery
    pictures = []
    for i in range(16):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (i * 16, 255 - i * 16, 128)).save(buffer, "PNG")
        pictures.append(buffer.getvalue())
    for i in range(count):
        sub = gallery / f"{i // per_folder:05}"
        if i % per_folder == 0:
            sub.mkdir(parents=True, exist_ok=True)
            if mixed:
                (sub / "README").write_text("what these pictures are\n")
                (sub / f"{i:06}.xmp").write_text("<x:xmpmeta/>\n")
        path = sub / (f"{i:06}" if mixed and i % 10 == 0 else f"{i:06}.png")
        path.write_bytes(pictures[i % len(pictures)])
        os.utime(path, ns=(OLD_NS, OLD_NS))
    marker.touch()
    return gallery


def _cpu() -> float:
    """User and system seconds of this process and its waited-for children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _scan(argv: list[str]) -> tuple[float, float]:
    """One scan in this process: its wall and CPU seconds."""
    from indexer.cli.main import main

    gc.collect()  # the garbage of the scan before is not this one's to collect
    cpu, start = _cpu(), time.perf_counter()
    assert main(argv) == 0
    return time.perf_counter() - start, _cpu() - cpu


def _fresh(argv: list[str]) -> tuple[float, float, float]:
    """One scan as a new `python -m indexer` process: wall, CPU seconds and peak GB."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "indexer", *argv])
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1e6


def prepared(
    folder: Path, count: int, mixed: bool = False, per_folder: int = 100, reuse: bool = False
) -> tuple[list[str], float]:
    """The argv of a scan of the built gallery into a fresh index (with `reuse`, the one
    there, if any), and its first scan's seconds (0 if reused: then an untimed rescan
    imports what the scan needs); after it, every scan is an unchanged rescan."""
    gallery = build(folder, count, mixed, per_folder)
    name = f"index-{count}{'-mixed' if mixed else ''}-{per_folder}.sqlite"
    db = folder / name
    argv = ["-q", "--config", os.devnull, "--db", str(db), "scan", str(gallery)]
    if reuse and db.exists():
        _scan(argv)
        return argv, 0.0
    for leftover in folder.glob(f"{name}*"):
        if leftover.is_file():
            leftover.unlink()
    return argv, _scan(argv)[0]


def run(folder: Path, count: int) -> dict[str, float]:
    argv, first = prepared(folder, count)
    again = _scan(argv)[0]
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
    parser.add_argument("--per-folder", type=int, default=100)
    parser.add_argument("--kinds", default=",".join(KINDS), help="plain, mixed or both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse-index", action="store_true", help="skip the first scan")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dtindex-bench")
    args = parser.parse_args()
    kinds = [kind for kind in args.kinds.split(",") if kind]
    assert set(kinds) <= set(KINDS), f"--kinds takes {', '.join(KINDS)}"
    print("command: python -m benchmarks.rescan " + shlex.join(sys.argv[1:]), flush=True)
    folder = args.work / "rescan"
    folder.mkdir(parents=True, exist_ok=True)
    scans = {
        kind: prepared(folder, args.files, kind == "mixed", args.per_folder, args.reuse_index)
        for kind in kinds
    }
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in scans}
    for number in range(args.rounds):
        for name, (argv, _) in scans.items():
            wall, cpu = _scan(argv)
            seconds[name].append((wall, cpu))
            print(f"round {number + 1}, {name}: rescan {wall:.2f} s, CPU {cpu:.2f} s", flush=True)
    for name, (argv, first) in scans.items():
        wall = statistics.median(w for w, _ in seconds[name])
        cpu = statistics.median(c for _, c in seconds[name])
        print(
            f"{name}: {args.files:,} files in folders of {args.per_folder:,}, rescan {wall:.2f} s, "
            f"CPU {cpu:.2f} s (medians; "
            + (f"first scan {first:.1f} s)" if first else "index reused)"),
            flush=True,
        )
        wall, cpu, peak = _fresh(argv)
        print(f"{name}: as a new process: {wall:.2f} s, CPU {cpu:.2f} s, peak {peak:.2f} GB")


if __name__ == "__main__":
    main_rescan()
