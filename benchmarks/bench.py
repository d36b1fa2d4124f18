"""Throughput of dtindex against the naive pipeline and against pure inference, in one run.

    python -m benchmarks.bench                  # balanced models (+ replicas if torch/timm)
    python -m benchmarks.bench --models balanced,wd-vit-v2,caformer --pictures 48 \
        --replica-pictures 48      # a quicker, smaller-picture subset
    python -m benchmarks.bench --models wd-vit-v2 --batches 16,64,256   # on a GPU
    python -m benchmarks.bench ... --dtindex-args "-o TensorrtExecutionProvider"  # TensorRT

For each model, on the same pictures: (1) the naive loop a user would write (decode one
picture with Pillow, pad, resize, run it, repeat); (2) pure inference on tensors already
prepared (the limit); (3) `dtindex tag` and `dtindex scan` on a fresh database at batch
1, 4 and 16 (`--batches`), with where their time went (the seconds the model ran, and
the seconds spent waiting for decoded pictures, from dtindex's own summary). Then an
unchanged rescan of a gallery of 100,000 small files. Results go to `--out` as JSON and
a Markdown table, and are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from benchmarks import corpus, models, rescan
from benchmarks.running import dtindex_run, machine
from indexer.cli.options import cache_folder
from indexer.imaging.prepare import decode, fill, fit
from indexer.model_tables import ModelDef
from indexer.modelfile import read_model_file
from indexer.models.runtime import RuntimeOptions, load, parse_provider_option


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def definition(model_file: Path) -> ModelDef:
    declared = read_model_file(model_file)
    return ModelDef(declared.name, declared.name, declared.onnx, declared.tags, declared.spec)


def naive_prepare(path: Path, size: int, nchw: bool, bgr: bool, scale: bool) -> np.ndarray:
    """What the reference scripts do: full decode, pad to a white square, Lanczos resize."""
    image = Image.open(path).convert("RGB")
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    array = np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    if bgr:
        array = array[:, :, ::-1]
    if nchw:
        array = array.transpose(2, 0, 1)
    if scale:
        array = array / 255.0
    return np.ascontiguousarray(array[None])


def naive(paths: list[Path], model: ModelDef, size: int) -> tuple[float, float]:
    """Seconds for the naive loop, and the part of it spent decoding and preparing.

    On every provider installed but TensorRT, which needs an engine built (minutes)."""
    providers = [p for p in ort.get_available_providers() if p != "TensorrtExecutionProvider"]
    session = ort.InferenceSession(str(model.onnx), providers=providers)
    name = session.get_inputs()[0].name
    spec = model.spec
    preparing = 0.0
    start = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        tensor = naive_prepare(
            path, size, spec.shape == "nchw", spec.channels == "bgr", spec.normalize
        )
        preparing += time.perf_counter() - t0
        session.run(None, {name: tensor})
    return time.perf_counter() - start, preparing


def pure_inference(
    paths: list[Path], model: ModelDef, batches: list[int], options: RuntimeOptions
) -> float:
    """Seconds to run already-prepared tensors through dtindex's own session, batched.

    The best of the batch sizes: big attention models can run slower per picture at
    batch 16 than at 4 on a small CPU. A graph with a fixed batch runs in chunks of it.
    """
    tagger = load(model, options)
    pictures = [fit(decode(p.read_bytes(), 10**9)[0], model.spec, tagger.height, tagger.width)
                for p in paths]  # fmt: skip
    array = tagger.new_batch(len(pictures))
    for slot, picture in zip(array, pictures, strict=True):
        fill(slot, picture, model.spec)
    tagger.run(array[:1])  # warm-up: a GPU provider sets up on its first run
    best = float("inf")
    for size in batches:
        start = time.perf_counter()
        for first in range(0, len(array), size):
            tagger.run(array[first : first + size])
        best = min(best, time.perf_counter() - start)
    return best


def runtime_of(extra: list[str]) -> RuntimeOptions:
    """The providers `--dtindex-args` asks dtindex for (`--cpu`, `-o`), for pure inference."""
    asked = [extra[i + 1] for i, arg in enumerate(extra[:-1]) if arg in ("-o", "--options")]
    return RuntimeOptions(
        cpu="--cpu" in extra,
        provider_options=tuple(parse_provider_option(text) for text in asked),
        engine_cache=str(cache_folder(os.environ) / "tensorrt"),  # dtindex's engines
    )


def bench_model(
    name: str, model_file: Path, paths: list[Path], work: Path, batches: list[int], extra: list[str]
) -> dict[str, object]:
    model = definition(model_file)
    tagger = load(model, runtime_of(extra))
    results: dict[str, object] = {"model": name, "pictures": len(paths)}
    naive_s, preparing_s = naive(paths, model, tagger.height)
    results["naive"] = {"seconds": naive_s, "decode_share": preparing_s / naive_s}
    tried = batches if tagger.fixed_batch is None else [1]
    pure_s = pure_inference(paths, model, tried, runtime_of(extra))
    results["pure_inference"] = {"seconds": pure_s, "best_of_batches": tried}
    config = work / f"{name}.toml"
    config.write_text(f'[models.{name}]\nmodel = "{model_file}"\n')
    names = [str(p) for p in paths]
    gallery = work / "gallery"  # exactly these pictures, for scan
    gallery.mkdir()
    for path in paths:
        os.link(path, gallery / path.name)
    for batch in batches:
        common = ["--config", str(config)]
        tag_argv = [*common, "tag", "-b", str(batch), *extra, name, *names]
        results[f"tag_b{batch}"] = dtindex_run(tag_argv)
        db = work / f"{name}-b{batch}.sqlite"
        scan_argv = [
            *common,
            "--db",
            str(db),
            "scan",
            "-b",
            str(batch),
            *extra,
            "-m",
            name,
            str(gallery),
        ]
        results[f"scan_b{batch}"] = dtindex_run(scan_argv)
    for value in results.values():
        if isinstance(value, dict) and "seconds" in value:
            value["pictures_per_s"] = len(paths) / value["seconds"]
            value["vs_naive"] = naive_s / value["seconds"]
            value["vs_pure"] = pure_s / value["seconds"]
    return results


def inference_seconds(session: ort.InferenceSession, tensor: np.ndarray) -> float:
    session.run(None, {"input": tensor})
    return min(timed(lambda: session.run(None, {"input": tensor})) for _ in range(5))


def decode_seconds(paths: list[Path]) -> float:
    """What the naive loop spends preparing one picture, on average."""
    start = time.perf_counter()
    for path in paths:
        naive_prepare(path, 448, False, True, False)
    return (time.perf_counter() - start) / len(paths)


def calibrate_balanced(target: float, work: Path, name: str, threads: int) -> Path:
    """Size the balanced model so one picture's inference costs `target` seconds.

    Two readings of "costs as much as decoding". `balanced` (threads=0): inference on
    every core takes as long as the naive loop's decoding, so the naive loop spends half
    its time in each. `balanced-cpu` (threads=1): inference on one core takes that long,
    so both stages cost the same CPU time, the resource they share on a small machine.
    """
    tensor = np.zeros((1, 448, 448, 3), np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    costs = {}
    for rounds in (1, 5):
        onnx_file = models.balanced(work, rounds, name).with_suffix(".onnx")
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        costs[rounds] = inference_seconds(session, tensor)
    per_round = (costs[5] - costs[1]) / 4
    rounds = max(1, round(1 + (target - costs[1]) / per_round))
    how = "on every core" if threads == 0 else f"on {threads} core(s)"
    print(f"{name}: {rounds} conv layers, aiming at {target * 1000:.0f} ms per picture {how}")
    return models.balanced(work, rounds, name)


def table(all_results: list[dict[str, object]], rescan_result: dict[str, float] | None) -> str:
    lines = [
        "| model | run | pictures/s | vs naive | vs pure inference | model busy | waiting |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in all_results:
        for key, value in result.items():
            if not (isinstance(value, dict) and "pictures_per_s" in value):
                continue
            busy = " | "
            if "model_s" in value:
                busy = f"{value['model_s']:.1f} s of {value['seconds']:.1f} s | "
                busy += f"{value['waiting_s']:.1f} s"
            lines.append(
                f"| {result['model']} | {key} | {value['pictures_per_s']:.2f} | "
                f"{value['vs_naive']:.2f}x | {value['vs_pure']:.2f} | {busy} |"
            )
    if rescan_result:
        lines.append("")
        lines.append(f"Unchanged rescan of {rescan_result['files']:,} files: "
                     f"{rescan_result['rescan_seconds']:.2f} s "
                     f"(first scan {rescan_result['first_scan_seconds']:.1f} s)")  # fmt: skip
    return "\n".join(lines)


ALL_MODELS = ("balanced", "balanced-cpu", "wd-vit-v2", "caformer")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        default="auto",
        help="balanced,balanced-cpu,wd-vit-v2,caformer (auto: all available)",
    )
    # 96: every photograph at every size in every format (corpus.COMPLETE); fewer takes
    # the first ones, two thirds of which are at most 2 megapixels when 48.
    parser.add_argument("--pictures", type=int, default=corpus.COMPLETE)
    parser.add_argument(
        "--batches", default="1,4,16", help="dtindex batch sizes (on a GPU: 16,64,256)"
    )
    parser.add_argument("--replica-pictures", type=int, default=corpus.COMPLETE)
    parser.add_argument(
        "--rescan-files", type=int, default=100_000, help="0 skips the rescan benchmark"
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dtindex-bench")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--dtindex-args", default="", metavar="ARGS",
                        help="more options for tag and scan (and pure inference's providers), "
                        "e.g. '-o TensorrtExecutionProvider'")  # fmt: skip
    return parser.parse_args()


def main_bench() -> None:
    args = arguments()
    batches = [int(b) for b in args.batches.split(",")]
    extra = shlex.split(args.dtindex_args)
    names = args.models.split(",") if args.models != "auto" else list(ALL_MODELS)
    pictures = corpus.build(args.work / "pictures", max(args.pictures, args.replica_pictures))
    balanced_paths = pictures[: args.pictures]
    target = decode_seconds(balanced_paths) if any("balanced" in n for n in names) else 0.0
    results = []
    for name in names:
        if name in ("balanced", "balanced-cpu"):
            threads = 1 if name == "balanced-cpu" else 0
            model_file = calibrate_balanced(target, args.work / "models", name, threads)
            paths = balanced_paths
        else:
            try:
                builder = {"wd-vit-v2": models.wd_vit_v2, "caformer": models.caformer}[name]
                model_file = builder(args.work / "models")
            except ImportError as exc:
                print(f"{name}: skipped ({exc}; pip install '.[replicas]')")
                continue
            paths = pictures[: args.replica_pictures]
        run_dir = Path(tempfile.mkdtemp(dir=args.work))
        print(f"{name}: {len(paths)} pictures ...", flush=True)
        results.append(bench_model(name, model_file, paths, run_dir, batches, extra))
    rescan_result = (
        rescan.run(args.work / "rescan", args.rescan_files) if args.rescan_files else None
    )
    report = {"machine": machine(), "models": results, "rescan": rescan_result}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{report['machine']['date']}-{report['machine']['cores']}cores"  # type: ignore[index]
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = table(results, rescan_result)
    (args.out / f"{stem}.md").write_text(
        f"# Benchmark {stem}\n\n{json.dumps(report['machine'])}\n\n{text}\n"
    )
    print(text)


if __name__ == "__main__":
    main_bench()
