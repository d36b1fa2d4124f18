"""Can dtindex's pipeline feed a GPU? (issue 13) Its throughput against the decode ceiling.

    python -m benchmarks.pipeline                    # 1,500 pictures, 20,000 tiny, 2 rounds
    python -m benchmarks.pipeline --pictures 40 --tiny 400 --rounds 1 --out /tmp/smoke
    python -m benchmarks.pipeline --rounds 0 --tiny 0 --profile scan  # its CPU, by function

With the `null` model (WD-shaped, nearly free; see models.py) the model costs nothing,
so what is left is the pipeline: reading, hashing, decoding, moving pixels, batching,
writing. Each round runs, one after the other in this process:

1. the decode ceiling (ceiling.py: read, SHA-1, decode, fit, float32 BGR, one process
   per core, nothing else) on 1,500 illustration-size JPEGs (illustrations.py);
2. `dtindex tag -b 64 null PICTURES...` (output to /dev/null) on them;
3. `dtindex scan -b 64 -m null ROOT` on a fresh index of a folder holding them;
4. the ceiling, then a first scan on a fresh index, of 20,000 tiny pictures;
5. `tag` and a first `scan` of one picture: the fixed cost of a run.

Each run is given in pictures per second and as a share of the ceiling of the same
round (alternating rounds, so a machine that slows down does so for both), with the
CPU time per picture of this process (RUSAGE_SELF: dtindex's main process, every thread)
and of its reaped children (RUSAGE_CHILDREN: decoder processes, once they have exited),
and this process's CPU per picture past the fixed cost. The issue's targets are printed
alongside: tag >= 0.95 and scan >= 0.9 of the ceiling, the tiny first scan >= 0.6 of its
own, and <= 0.3 ms of main-process CPU per picture (past the fixed cost). A warm-up run
before the first round does the imports and first loads, which are not counted.

Imports here stay light: decoder processes are spawned and import this module first.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benchmarks import ceiling, illustrations, pipeline_report
from benchmarks.pipeline_report import Figures
from benchmarks.running import dtindex_run as run_in_process
from benchmarks.running import machine

T = TypeVar("T")


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measured(action: Callable[[], T], pictures: int) -> tuple[T, Figures]:
    """Run `action`: its result, and wall time and CPU (this process, reaped children)."""
    gc.collect()
    main0, children0 = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - start
    main_s = cpu_seconds(resource.RUSAGE_SELF) - main0
    children_s = cpu_seconds(resource.RUSAGE_CHILDREN) - children0
    return result, {
        "pictures": pictures,
        "seconds": seconds,
        "pictures_per_s": pictures / seconds,
        "main_cpu_s": main_s,
        "children_cpu_s": children_s,
        "main_cpu_ms_per_picture": 1000 * main_s / pictures,
        "children_cpu_ms_per_picture": 1000 * children_s / pictures,
    }


def ceiling_run(paths: list[Path]) -> Figures:
    digests, figures = measured(lambda: ceiling.run(paths), len(paths))
    if len(set(digests)) != len(paths):
        raise SystemExit(f"{len(paths) - len(set(digests))} pictures repeat another's content")
    return figures


def dtindex_run(argv: list[str], pictures: int) -> Figures:
    """`dtindex ARGV` in this process, as bench.py runs it, with where its time went."""

    summary, figures = measured(lambda: run_in_process(argv), pictures)
    figures.update({k: v for k, v in summary.items() if k != "seconds"})
    return figures


def write_config(work: Path, name: str, model_file: Path, fp16: bool = False) -> Path:
    """The model at the tag threshold of WD's authors; scores >= 0.01 are stored."""
    config = work / "pipeline.toml"
    config.write_text(
        f'store_threshold = 0.01\n\n[models.{name}]\nmodel = "{model_file}"\nthreshold = 0.35\n'
        + ("fp16 = true\n" if fp16 else "")
    )
    return config


def model_file(name: str, folder: Path) -> Path:
    """The null model, or a random-weight replica (on a GPU: is the GPU the limit?)."""
    from benchmarks import models

    builders = {"null": models.null, "wd-vit-v2": models.wd_vit_v2, "caformer": models.caformer}
    return builders[name](folder)


def fresh_index(work: Path, name: str) -> Path:
    """An index path in a folder of its own, emptied: the index keeps files beside it."""
    folder = work / f"index-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder / "index.sqlite"


class Runner:
    """The runs of one round, on pictures and an index made ready once."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        built = model_file(args.model, args.work / "models")
        config = write_config(work, args.model, built, args.fp16)
        self.common = ["--config", str(config)]
        self.extra = shlex.split(args.dtindex_args)
        if args.decode:
            self.extra += ["--decode", args.decode]
        self.paths = illustrations.build_illustrations(
            args.work / args.kind, args.pictures, args.kind
        )
        self.gallery = illustrations.gallery_of(self.paths, work / "gallery")
        self.tiny_root, self.tiny = (
            illustrations.build_tiny(args.work / f"tiny-{args.tiny}", args.tiny)
            if args.tiny
            else (work, [])
        )

        self.one = illustrations.gallery_of(self.paths[:1], work / "gallery-one")

    def tag_argv(self, paths: list[Path]) -> list[str]:
        batch = ["-b", str(self.args.batch), *self.extra]
        return [*self.common, "tag", *batch, self.args.model, *map(str, paths)]

    def scan_argv(self, name: str, root: Path) -> list[str]:
        db = fresh_index(self.work, name)
        batch = ["-b", str(self.args.batch), *self.extra]
        return [*self.common, "--db", str(db), "scan", *batch, "-m", self.args.model, str(root)]

    def fixed_costs(self) -> dict[str, Figures]:
        """`tag` and a first `scan` of one picture: what a run costs before its pictures."""
        return {
            "tag_one": dtindex_run(self.tag_argv(self.paths[:1]), 1),
            "scan_one": dtindex_run(self.scan_argv("one", self.one), 1),
        }

    def round(self, number: int) -> dict[str, Figures]:
        say(f"round {number}: ceiling, {len(self.paths)} pictures")
        runs = {"ceiling": ceiling_run(self.paths)}
        say(f"round {number}: dtindex tag")
        runs["tag"] = dtindex_run(self.tag_argv(self.paths), len(self.paths))
        say(f"round {number}: dtindex scan")
        runs["scan"] = dtindex_run(self.scan_argv("scan", self.gallery), len(self.paths))
        if self.tiny:
            say(f"round {number}: ceiling, {len(self.tiny)} tiny pictures")
            runs["tiny_ceiling"] = ceiling_run(self.tiny)
            say(f"round {number}: dtindex scan of the tiny pictures")
            argv = self.scan_argv("tiny", self.tiny_root)
            runs["tiny_scan"] = dtindex_run(argv, len(self.tiny))
        say(f"round {number}: dtindex tag and scan of one picture (the fixed costs)")
        runs.update(self.fixed_costs())
        for name in ("scan", "tiny", "one"):
            fresh_index(self.work, name)  # gone: a big index must not fill the disk
        pipeline_report.add_shares(runs)
        return runs


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def write_profile(runner: Runner, run: str, path: Path) -> None:
    """cProfile one run of dtindex in this process (`tag`, `scan` or `tiny`, a first scan
    of the tiny pictures): the functions that cost its main process the most CPU."""
    from benchmarks.profiling import profiled

    argv, pictures = {
        "tag": lambda: (runner.tag_argv(runner.paths), len(runner.paths)),
        "scan": lambda: (runner.scan_argv("scan", runner.gallery), len(runner.paths)),
        "tiny": lambda: (runner.scan_argv("tiny", runner.tiny_root), len(runner.tiny)),
    }[run]()
    say(f"profiling one dtindex {run} run")
    with path.open("w") as out:
        out.write(f"dtindex {run}, {pictures} pictures, main process, CPU of all threads:\n")
        stats = profiled(lambda: run_in_process(argv), out)
        stats.sort_stats("tottime").print_stats(25)
    fresh_index(runner.work, run)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pictures", type=int, default=1500, help="illustration-size JPEGs")
    parser.add_argument(
        "--kind",
        choices=tuple(illustrations.KINDS),
        default="illustrations",
        help="the pictures' sizes: illustrations (1-3 MP) or web (0.3-1 MP)",
    )
    parser.add_argument("--tiny", type=int, default=20_000, help="tiny pictures (0: none)")
    parser.add_argument("--skip-tiny", action="store_true", help="as --tiny 0")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fp16", action="store_true", help="the model's fp16 copy (a GPU's)")
    parser.add_argument(
        "--model",
        choices=("null", "wd-vit-v2", "caformer"),
        default="null",
        help="null: the pipeline alone; a replica (needs torch, timm): the model's share too",
    )
    parser.add_argument("--batch", type=int, default=64, help="dtindex -b")
    parser.add_argument(
        "--dtindex-args",
        default="",
        metavar="ARGS",
        help="more options for tag and scan, e.g. '--cpu' or '-o TensorrtExecutionProvider'",
    )
    parser.add_argument(
        "--decode",
        choices=("auto", "cpu", "gpu"),
        help="dtindex --decode for tag and scan (default: the config's, auto); gpu: the GPU "
        "lane, which a run of one model takes (the ceiling stays the CPU decoders')",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="tag",
        choices=("tag", "scan", "tiny"),
        help="then cProfile one run (default tag; tiny: a first scan of the tiny pictures): "
        "its 25 costliest functions by CPU",
    )
    default_work = Path(tempfile.gettempdir()) / "dtindex-pipeline"
    parser.add_argument("--work", type=Path, default=default_work, help="pictures, cached")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.skip_tiny:
        args.tiny = 0
    if args.pictures < 1 or args.rounds < (0 if args.profile else 1):
        parser.error("--pictures and --rounds must be at least 1 (--rounds 0: --profile alone)")
    return args


def main() -> None:
    args = arguments()
    args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        runner = Runner(args, Path(scratch))
        say("warming up: dtindex tag and scan of one picture, not counted")
        runner.fixed_costs()  # imports and first loads happen once, here
        rounds = [runner.round(number) for number in range(1, args.rounds + 1)]
        about = machine()
        model = "" if args.model == "null" else f"-{args.model}" + ("-fp16" if args.fp16 else "")
        model += "" if args.kind == "illustrations" else f"-{args.kind}"
        model += f"-decode-{args.decode}" if args.decode else ""
        stem = f"{time.strftime('%Y-%m-%d')}-{about['cores']}cores-pipeline{model}"
        args.out.mkdir(parents=True, exist_ok=True)
        if args.profile:
            suffix = "" if args.profile == "tag" else f"-{args.profile}"
            write_profile(runner, args.profile, args.out / f"{stem}-profile{suffix}.txt")
    if not rounds:
        return  # --rounds 0: the profile alone
    settings = {k: v for k, v in vars(args).items() if k not in ("work", "out", "skip_tiny")}
    report = {"machine": about, "model": args.model, "settings": settings, "rounds": rounds}
    print(pipeline_report.write(args.out, stem, report))


if __name__ == "__main__":
    main()
