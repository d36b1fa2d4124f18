"""The long hunt: tests/test_hunt.py run seed after seed for as long as asked, with what
each seed tried and found written to benchmarks/results/.

Usage: python -m benchmarks.hunt --minutes 60 [--examples 10] [--steps 40] [--first-seed 1]

Each seed is one pytest run of the hunting test with its own random walks (examples,
each of up to `steps` steps). A seed that fails keeps pytest's output, which ends with
Hypothesis's minimal reproduction, in benchmarks/results/hunt-seed-N.txt; the report
lists every seed, its time, its steps by kind and what it found.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def run_seed(seed: int, examples: int, steps: int) -> tuple[bool, float, Counter[str], str]:
    """One pytest run of the hunt: passed, seconds, steps by kind, pytest's output."""
    with tempfile.TemporaryDirectory() as folder:
        tally = Path(folder) / "tally.jsonl"
        env = {
            **os.environ,
            "DTINDEX_HUNT_EXAMPLES": str(examples),
            "DTINDEX_HUNT_STEPS": str(steps),
            "DTINDEX_HUNT_TALLY": str(tally),
        }
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-x",
                f"--hypothesis-seed={seed}",
                "tests/test_hunt.py",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        kinds: Counter[str] = Counter()
        if tally.exists():
            for line in tally.read_text().splitlines():
                kinds.update(json.loads(line))
    return done.returncode == 0, seconds, kinds, done.stdout + done.stderr


def found(output: str) -> str:
    """The failure's first assertion or error line, for the report."""
    for line in output.splitlines():
        text = line.strip(" |")
        if text.startswith(("AssertionError", "E ", "FileNotFoundError", "Flaky")):
            return text[:200].replace("|", "\\|")  # a table cell
    return "failed (see the seed's file)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--examples", type=int, default=10, help="walks a seed")
    parser.add_argument("--steps", type=int, default=40, help="steps a walk, at most")
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    day = datetime.date.today().isoformat()
    report = RESULTS / f"{day}-{os.cpu_count()}cores-hunt.md"
    if report.exists():  # an earlier hunt of the day is kept
        report = report.with_name(f"{report.stem}-{datetime.datetime.now():%H%M}.md")
    rows, total = [], Counter[str]()
    deadline = time.monotonic() + args.minutes * 60
    seed = args.first_seed
    while time.monotonic() < deadline:
        passed, seconds, kinds, output = run_seed(seed, args.examples, args.steps)
        total.update(kinds)
        outcome = "passed" if passed else found(output)
        if not passed:
            (RESULTS / f"{day}-hunt-seed-{seed}.txt").write_text(output)
        rows.append(f"| {seed} | {seconds:.0f} | {steps(kinds)} | {outcome} |")
        print(rows[-1], file=sys.stderr, flush=True)
        seed += 1
        write_report(report, args, rows, total)


SETUP = "example: "  # the tally's keys for how an example was set up, not its steps


def steps(kinds: Counter[str]) -> int:
    return sum(n for kind, n in kinds.items() if not kind.startswith(SETUP))


def write_report(
    report: Path, args: argparse.Namespace, rows: list[str], total: Counter[str]
) -> None:
    setups = [(kind, n) for kind, n in sorted(total.items()) if kind.startswith(SETUP)]
    lines = [
        f"# The long hunt, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.",
        f"Command: `python -m benchmarks.hunt --minutes {args.minutes:g} --examples "
        f"{args.examples} --steps {args.steps} --first-seed {args.first_seed}`",
        "",
        f"Seeds run: {len(rows)}; steps: {steps(total)}.",
        "",
        "| seed | seconds | steps | outcome |",
        "|---|---|---|---|",
        *rows,
        "",
        "Steps by kind:",
        "",
        *(f"- {kind}: {n}" for kind, n in sorted(total.items()) if not kind.startswith(SETUP)),
        "",
        "Examples by setup (the GPU lane's decoder, None for no lane, tests/hooks/gpu_lane.py;",
        "the index's database):",
        "",
        *(f"- {kind[len(SETUP) :]}: {n}" for kind, n in setups),
        "",
    ]
    report.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
