"""The pipeline benchmark's table and files: figures against the ceiling and the targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Figures = dict[str, Any]
TARGETS = {"tag": 0.95, "scan": 0.9, "tiny_scan": 0.6}  # shares of the round's ceiling
MAIN_CPU_TARGET_MS = 0.3  # main-process CPU per picture
FIXED = {"tag": "tag_one", "scan": "scan_one", "tiny_scan": "scan_one"}  # one-picture runs


def add_shares(runs: dict[str, Figures]) -> None:
    """Each run against the round's ceiling; main-process CPU past the fixed cost.

    The fixed cost is that of the same command on one picture (loading the model,
    opening the index, starting a decoder); what is left, over the other pictures, is
    the cost per picture that a bigger gallery pays: what the CPU target is about.
    """
    for name, run in runs.items():
        if name not in TARGETS:
            continue
        base = runs["tiny_ceiling" if name.startswith("tiny") else "ceiling"]
        run["vs_ceiling"] = run["pictures_per_s"] / base["pictures_per_s"]
        fixed = runs.get(FIXED[name])
        if fixed and run["pictures"] > 1:
            beyond = run["main_cpu_s"] - fixed["main_cpu_s"]
            run["main_cpu_ms_per_further_picture"] = 1000 * beyond / (run["pictures"] - 1)


def mean(rounds: list[dict[str, Figures]], run: str, key: str) -> float:
    values = [r[run][key] for r in rounds if run in r and key in r[run]]
    return sum(values) / len(values) if values else float("nan")


def verdict(value: float, target: float, most: bool = False) -> str:
    met = value <= target if most else value >= target
    return f"{'met' if met else 'NOT met'} ({'<=' if most else '>='} {target:g})"


def _cell(figures: Figures, key: str, form: str) -> str:
    return format(figures[key], form) if key in figures else ""


def table(rounds: list[dict[str, Figures]]) -> str:
    lines = [
        "| round | run | pictures | s | pictures/s | vs ceiling | target | main CPU "
        "ms/picture | past the fixed cost | children CPU ms/picture | model busy | waiting |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, runs in enumerate(rounds, 1):
        for name, f in runs.items():
            target = f">= {TARGETS[name]:g}" if name in TARGETS else ""
            lines.append(
                f"| {number} | {name} | {f['pictures']} | {f['seconds']:.2f} "
                f"| {f['pictures_per_s']:.1f} | {_cell(f, 'vs_ceiling', '.3f')} | {target} "
                f"| {f['main_cpu_ms_per_picture']:.3f} "
                f"| {_cell(f, 'main_cpu_ms_per_further_picture', '.3f')} "
                f"| {f['children_cpu_ms_per_picture']:.2f} "
                f"| {_cell(f, 'model_s', '.2f')} | {_cell(f, 'waiting_s', '.2f')} |"
            )
    lines.append("")
    lines.append(f"Means over {len(rounds)} round(s), against the issue's targets:")
    for name, goal in TARGETS.items():
        if any(name in r for r in rounds):
            ratio = mean(rounds, name, "vs_ceiling")
            cpu = mean(rounds, name, "main_cpu_ms_per_further_picture")
            lines.append(
                f"- {name}: {ratio:.3f} of the ceiling, {verdict(ratio, goal)}; main-process "
                f"CPU {cpu:.3f} ms per picture past the fixed cost, "
                f"{verdict(cpu, MAIN_CPU_TARGET_MS, most=True)}"
            )
    return "\n".join(lines)


def write(out: Path, stem: str, report: dict[str, Any]) -> str:
    """`stem`.json and `stem`.md in `out`; the table."""
    rounds = report["rounds"]
    report["targets"] = {**TARGETS, "main_cpu_ms_per_picture": MAIN_CPU_TARGET_MS}
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = table(rounds)
    about, settings = json.dumps(report["machine"]), json.dumps(report["settings"])
    header = f"# Pipeline benchmark {stem} (issue 13, the `{report['model']}` model)\n\n{about}\n\n"
    (out / f"{stem}.md").write_text(f"{header}{settings}\n\n{text}\n")
    return text
