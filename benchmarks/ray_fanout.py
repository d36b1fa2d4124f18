"""Pictures per second of `dtindex scan --ray local` against a local scan of one gallery,
with the workers reading the files where they are (a shared mount) and with the driver
shipping their bytes (`--ship-files`).

On one machine the Ray scan is slower (the same cores, plus Ray's start, serialisation
and scheduling); the point is the overhead per picture, to project a cluster. Each run
is a fresh `dtindex` process on a fresh index, alternating local and Ray, so both pay
their start-up; the wall time is the whole command's. A scan of a one-picture gallery
in each mode gives its fixed cost (start-up, Ray's included), so the cost per picture
past it is read apart: what a long scan on a cluster pays per picture.

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


MODES = {"local": (), "ray": ("--ray", "local"), "ship": ("--ray", "local", "--ship-files")}
NAMES = {"local": "local", "ray": "--ray local", "ship": "--ray local --ship-files"}


def timed_scan(gallery: Path, work: Path, mode: str, round_: int) -> float:
    db = work / f"{mode}-{gallery.name}-{round_}.sqlite"
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"), XDG_CONFIG_HOME=str(work))
    dtindex = str(Path(sys.executable).with_name("dtindex"))  # the one beside this Python
    argv = [dtindex, "scan", "--db", str(db), *MODES[mode], str(gallery)]
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
        make_gallery(work / "one", 1, args.side)
        times: dict[str, list[float]] = {m + one: [] for m in MODES for one in ("", "1")}
        for round_ in range(args.rounds):
            for mode in MODES:
                times[mode].append(timed_scan(work / "gallery", work, mode, round_))
                times[f"{mode}1"].append(timed_scan(work / "one", work, mode, round_))
    median = {mode: statistics.median(runs) for mode, runs in times.items()}
    past = {m: 1000 * (median[m] - median[f"{m}1"]) / (args.pictures - 1) for m in MODES}
    lines = [
        f"# scan --ray local against a local scan, {time.strftime('%Y-%m-%d')}",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"model: the built-in palette; {args.pictures} noisy {args.side}x{args.side} JPEGs; "
        f"{args.rounds} rounds, alternating, each a fresh process and index.",
        "",
        "| scan | wall s (median) | pictures/s | runs | one picture (fixed cost) s | "
        "ms per picture past it |",
        "|---|---|---|---|---|---|",
    ]
    for mode, name in NAMES.items():
        lines.append(
            f"| {name} | {median[mode]:.2f} | {args.pictures / median[mode]:.1f} | "
            f"{_runs(times[mode])} | {median[mode + '1']:.2f} | {past[mode]:.1f} |"
        )
    lines += [
        "",
        f"Ray/local time ratio: {median['ray'] / median['local']:.2f} with start-up, "
        f"{past['ray'] / past['local']:.2f} past it; Ray's extra per picture past the "
        f"fixed cost: {past['ray'] - past['local']:.1f} ms.",
        f"Shipping the files' bytes from the driver against workers reading them: "
        f"{median['ship'] / median['ray']:.2f} of the time with start-up, "
        f"{past['ship'] / past['ray']:.2f} past it ({past['ship'] - past['ray']:+.1f} ms "
        "a picture).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
