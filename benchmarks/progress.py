"""What the progress line costs (issue 17): first scans of tiny pictures, the line drawn
on a terminal or not, alternating.

    python -m benchmarks.progress                              # 2,000 tiny pictures, 3 rounds
    python -m benchmarks.progress --before /tmp/dtindex-before # and another source tree

Each run is `dtindex scan -b 64 -m null` of the same tiny pictures (`illustrations`) on
a fresh index, in a fresh process whose stderr is a pseudo-terminal 100 columns wide (the
line is drawn) or /dev/null (it is not). `--before` adds a source tree (say `git archive`
of an older commit) run the same way, drawn. The variants alternate within each round,
so a machine that slows down does so for all of them; per variant the median wall time
and the median CPU time of dtindex's main process (every thread, no decoder) are printed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from benchmarks import illustrations
from benchmarks.pipeline import fresh_index, write_config

# Runs dtindex from the tree in argv[1]; writes its exit status and main-process CPU.
RUNNER = (
    "import resource, sys; sys.path.insert(0, sys.argv[1]); "
    "from indexer.cli.main import main; code = main(sys.argv[3:]); "
    "use = resource.getrusage(resource.RUSAGE_SELF); "
    "open(sys.argv[2], 'w').write(f'{code} {use.ru_utime + use.ru_stime}')"
)


def _terminal(shown: list[int]) -> tuple[int, int]:
    """A pseudo-terminal 100 columns wide; a thread reads what is drawn, counting redraws."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))

    def drain() -> None:
        try:
            while data := os.read(main, 65536):
                shown[0] += data.count(b"\r")  # a redraw starts with one
        except OSError:  # the terminal's last user closed it
            pass

    threading.Thread(target=drain, daemon=True).start()
    return main, child


def run_once(tree: Path, argv: list[str], drawn: bool, work: Path) -> tuple[float, float]:
    """Wall seconds and main-process CPU seconds of one scan."""
    result, shown = work / "result", [0]
    main, child = _terminal(shown) if drawn else (-1, os.open(os.devnull, os.O_WRONLY))
    start = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-c", RUNNER, str(tree), str(result), *argv],
            stderr=child,
            stdout=subprocess.DEVNULL,
            cwd=work,
            check=True,
        )
    finally:
        os.close(child)
    seconds = time.perf_counter() - start
    if main >= 0:
        os.close(main)
        print(f"  (the line was drawn {shown[0]} times)")
    code, cpu = result.read_text().split()
    if code != "0":
        raise SystemExit(f"dtindex {' '.join(argv)} exited {code}")
    return seconds, float(cpu)


def main_progress() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", type=int, default=2_000, help="tiny pictures")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another source tree, run drawn")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dtindex-bench")
    args = parser.parse_args()
    from benchmarks import models

    work = args.work / "progress"
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(work, models.null(work / "models"))
    root, _ = illustrations.build_tiny(args.work / f"tiny-{args.tiny}", args.tiny)
    here = Path(__file__).resolve().parent.parent
    variants = {"drawn": (here, True), "not drawn": (here, False)}
    if args.before:
        variants["before, drawn"] = (args.before.resolve(), True)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for number in range(args.rounds):
        for name, (tree, drawn) in variants.items():
            db = fresh_index(work, "progress")
            argv = ["--config", str(config), "--db", str(db), "scan", "-b", "64", "-m", "null"]
            figures[name].append(run_once(tree, [*argv, str(root)], drawn, work))
            wall, cpu = figures[name][-1]
            print(f"round {number + 1}, {name}: {wall:.2f} s, main process CPU {cpu:.2f} s")
    for name, runs in figures.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name}: median {wall:.2f} s, main process CPU {cpu:.2f} s ({args.tiny} files)")


if __name__ == "__main__":
    main_progress()
