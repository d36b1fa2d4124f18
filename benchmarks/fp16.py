"""fp16 against fp32: how far the scores move, and how fast each runs, on this machine.

    python -m benchmarks.fp16                  # both replicas, 16 pictures
    python -m benchmarks.fp16 --models caformer --pictures 48 --cpu

For each random-weight replica (WD ViT v2 and ML-Danbooru CAFormer, from the `replicas`
extra), the same prepared pictures go through dtindex's session on the fp32 graph and
on its `fp16 = true` copy (made by `indexer.models.variants`). Printed and written to `--out`:
the largest, mean and 99.9th-percentile absolute score differences; at thresholds 0.35
and 0.5, how many (picture, tag) decisions flip against how many tags fp32 keeps; the
mean overlap of each picture's top 20 tags; and pictures per second of both graphs on
the provider ONNX Runtime picks (CUDA on a GPU machine; on the CPU fp16 is slower).
Replica tags are meaningless, so these are numerical agreement figures, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from benchmarks import corpus, models
from benchmarks.bench import definition
from benchmarks.running import machine
from indexer.imaging.prepare import decode, fill, fit
from indexer.model_tables import ModelDef
from indexer.models.runtime import RuntimeOptions, Tagger, load

THRESHOLDS = (0.35, 0.5)
TOP = 20


def prepared(paths: list[Path], tagger: Tagger) -> NDArray[np.float32]:
    array = tagger.new_batch(len(paths))
    for slot, path in zip(array, paths, strict=True):
        image = decode(path.read_bytes(), 10**9)[0]
        fill(slot, fit(image, tagger.spec, tagger.height, tagger.width), tagger.spec)
    return array


def run_all(tagger: Tagger, array: NDArray[np.float32], batch: int) -> tuple[np.ndarray, float]:
    """Scores of every picture, and the best of two timed passes in seconds."""
    tagger.run(array[:1])  # warm-up: CUDA and TensorRT set up on the first run
    best, scores = float("inf"), np.empty(0)
    for _ in range(2):
        start = time.perf_counter()
        scores = np.concatenate(
            [tagger.run(array[i : i + batch]) for i in range(0, len(array), batch)]
        )
        best = min(best, time.perf_counter() - start)
    return scores, best


def agreement(full: np.ndarray, half: np.ndarray) -> dict[str, object]:
    difference = np.abs(full.astype(np.float64) - half)
    result: dict[str, object] = {
        "max_abs": float(difference.max()),
        "mean_abs": float(difference.mean()),
        "p999_abs": float(np.quantile(difference, 0.999)),
    }
    for threshold in THRESHOLDS:
        kept_full, kept_half = full >= threshold, half >= threshold
        result[f"flips_at_{threshold}"] = int((kept_full != kept_half).sum())
        result[f"kept_at_{threshold}"] = int(kept_full.sum())
    top_full = np.argsort(-full, axis=1)[:, :TOP]
    top_half = np.argsort(-half, axis=1)[:, :TOP]
    overlaps = [len(set(a) & set(b)) / TOP for a, b in zip(top_full, top_half, strict=True)]
    result[f"top{TOP}_overlap"] = float(np.mean(overlaps))
    return result


def bench(name: str, model_file: Path, paths: list[Path], options: RuntimeOptions) -> dict:
    base = definition(model_file)
    half_def = ModelDef(base.name, base.title, base.onnx, base.tags, base.spec, variant="fp16")
    start = time.perf_counter()
    full, half = load(base, options), load(half_def, options)
    setup = time.perf_counter() - start
    batch = full.fixed_batch or 4
    array = prepared(paths, full)
    full_scores, full_s = run_all(full, array, batch)
    half_scores, half_s = run_all(half, array, batch)
    return {
        "model": name,
        "pictures": len(paths),
        "batch": batch,
        "providers": full.session.get_providers(),
        "load_and_convert_s": setup,
        "fp32_pictures_per_s": len(paths) / full_s,
        "fp16_pictures_per_s": len(paths) / half_s,
        "fp16_speedup": full_s / half_s,
        **agreement(full_scores, half_scores),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| model | provider | fp32 pic/s | fp16 pic/s | speedup | max abs | mean abs "
        f"| flips @0.35 (of kept) | flips @0.5 (of kept) | top-{TOP} overlap |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['providers'][0]} | {r['fp32_pictures_per_s']:.2f} | "
            f"{r['fp16_pictures_per_s']:.2f} | {r['fp16_speedup']:.2f}x | {r['max_abs']:.2e} | "
            f"{r['mean_abs']:.2e} | {r['flips_at_0.35']} ({r['kept_at_0.35']}) | "
            f"{r['flips_at_0.5']} ({r['kept_at_0.5']}) | {r[f'top{TOP}_overlap']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="wd-vit-v2,caformer")
    parser.add_argument("--pictures", type=int, default=16)
    parser.add_argument("--cpu", action="store_true", help="force the CPU provider")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dtindex-bench")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    paths = corpus.build(args.work / "pictures", args.pictures)[: args.pictures]
    options = RuntimeOptions(cpu=args.cpu, cache_dir=str(args.work / "cache"))
    builders = {"wd-vit-v2": models.wd_vit_v2, "caformer": models.caformer}
    results = []
    for name in args.models.split(","):
        try:
            model_file = builders[name](args.work / "models")
        except ImportError as exc:
            print(f"{name}: skipped ({exc}; pip install '.[replicas]')")
            continue
        print(f"{name}: fp32 and fp16 on {len(paths)} pictures ...", flush=True)
        results.append(bench(name, model_file, paths, options))
    report = {"machine": machine(), "results": results}
    stem = f"{report['machine']['date']}-{report['machine']['cores']}cores-fp16"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = table(results)
    (args.out / f"{stem}.md").write_text(
        f"# fp16 {stem}\n\n{json.dumps(report['machine'])}\n\n{text}\n"
    )
    print(text)


if __name__ == "__main__":
    main()
