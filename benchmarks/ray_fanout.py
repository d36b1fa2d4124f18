"""Pictures per second of `dtindex scan --ray local` against a local scan of one gallery.

On one machine the Ray scan is slower (the same cores, plus Ray's start, serialisation
and scheduling); the point is the overhead per picture, to project a cluster. Each run
is a fresh `dtindex` process on a fresh index, alternating local and Ray, so both pay
their start-up; the wall time is the whole command's.

    python -m benchmarks.ray_fanout --pictures 200 --rounds 2 --out benchmarks/results/X.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_gallery(folder: Path, count: int, side: int) -> None:
    """Noisy pictures (not flat colour: decoding them costs what photographs cost)."""
    rng = np.random.default_rng(16)
    folder.mkdir(parents=True)
    for k in range(count):
        pixels = rng.integers(0, 256, (side, side, 3), np.uint8)
        Image.fromarray(pixels).save(folder / f"p{k:05d}.jpg", quality=90)


def timed_scan(gallery: Path, work: Path, ray: bool, round_: int) -> float:
    db = work / f"{'ray' if ray else 'local'}-{round_}.sqlite"
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"), XDG_CONFIG_HOME=str(work))
    dtindex = str(Path(sys.executable).with_name("dtindex"))  # the one beside this Python
    argv = [dtindex, "scan", "--db", str(db), str(gallery)]
    argv += ["--ray", "local"] if ray else []
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def _runs(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=200)
    parser.add_argument("--side", type=int, default=768)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_gallery(work / "gallery", args.pictures, args.side)
        times: dict[str, list[float]] = {"local": [], "ray": []}
        for round_ in range(args.rounds):
            for ray in (False, True):
                seconds = timed_scan(work / "gallery", work, ray, round_)
                times["ray" if ray else "local"].append(seconds)
    local, fanned = statistics.median(times["local"]), statistics.median(times["ray"])
    per_picture_ms = 1000 * (fanned - local) / args.pictures
    lines = [
        f"# scan --ray local against a local scan, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"model: the built-in palette; {args.pictures} noisy {args.side}x{args.side} JPEGs; "
        f"{args.rounds} rounds, alternating, each a fresh process and index.",
        "",
        "| scan | wall s (median) | pictures/s | runs |",
        "|---|---|---|---|",
        f"| local | {local:.2f} | {args.pictures / local:.1f} | {_runs(times['local'])} |",
        f"| --ray local | {fanned:.2f} | {args.pictures / fanned:.1f} | {_runs(times['ray'])} |",
        "",
        f"Ray/local time ratio: {fanned / local:.2f}; "
        f"extra per picture: {per_picture_ms:.1f} ms (start-up included).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
