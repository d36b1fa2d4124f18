"""Tag agreement between the earlier (`resize = "lanczos"`) and the bilinear preparation.

    python -m benchmarks.agreement [--pictures 60] [--models DIR]

Runs the random-weight replicas of `benchmarks.models` (WD v1.4 ViT v2 and ML-Danbooru
CAFormer: the real architectures and input sizes) on the same pictures prepared both ways
and prints, per model and kind of picture, how many of the tags at the usual threshold
agree (tags on either side, the share on both), and how far the scores move. The replicas'
weights are random, so their tags mean nothing; what is measured is how much each
architecture's output moves when the input moves as the preparation moves it.

The replicas need torch and timm (the `replicas` extra) once, to be built into `--models`;
this script itself needs only ONNX Runtime. Build them with
`python -c "from pathlib import Path; from benchmarks import models as m;
m.wd_vit_v2(Path(DIR)); m.caformer(Path(DIR))"` in an environment that has torch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks import corpus, illustrations
from indexer.imaging.messages import Target
from indexer.imaging.prepare import fill, input_shape
from indexer.imaging.tasks import prepare_targets
from indexer.modelfile import read_model_file
from indexer.preparation import ModelSpec

THRESHOLDS = {"wd-vit-v2": 0.35, "caformer": 0.7}  # the families' usual thresholds
LIMIT = 200_000_000


def scores(session: ort.InferenceSession, spec: ModelSpec, data: bytes) -> np.ndarray:
    target = Target(spec, 448, 448)
    [prepared], _ = prepare_targets(data, [target], LIMIT)
    batch = np.empty(input_shape(spec, 1, 448, 448), np.float32)
    fill(batch[0], prepared, spec)
    output = np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0][0])
    return 1.0 / (1.0 + np.exp(-output)) if spec.interpret == "sigmoid" else output


def compare(model: Path, pictures: list[bytes]) -> str:
    declared = read_model_file(model)
    options = ort.SessionOptions()
    session = ort.InferenceSession(str(declared.onnx), options, ["CPUExecutionProvider"])
    threshold = THRESHOLDS[declared.name]
    both = either = 0
    moved: list[float] = []
    for data in pictures:
        was = scores(session, replace(declared.spec, resize="lanczos"), data)
        now = scores(session, replace(declared.spec, resize="bilinear"), data)
        both += int(np.sum((was >= threshold) & (now >= threshold)))
        either += int(np.sum((was >= threshold) | (now >= threshold)))
        moved.append(float(np.abs(was - now).max()))
    agree = both / either if either else 1.0
    return f"{agree:.4f} ({both} of {either} tags) | {np.mean(moved):.4f} | {np.max(moved):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pictures", type=int, default=60, help="of each kind")
    work = Path(tempfile.gettempdir()) / "dtindex-pipeline"
    parser.add_argument("--work", type=Path, default=work, help="pictures, cached")
    parser.add_argument("--models", type=Path, default=work / "models", help="the replicas")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    ill = illustrations.build_illustrations(args.work / "illustrations", args.pictures)
    photos = corpus.build(args.work / "corpus", corpus.COMPLETE)[: args.pictures]
    sets = {
        "illustrations, 1-3 MP JPEG": [p.read_bytes() for p in ill],
        "photographs, 0.5 MP and up, JPEG/PNG/WebP": [p.read_bytes() for p in photos],
    }
    lines = [
        f"# Tag agreement, lanczos vs bilinear preparation ({time.strftime('%Y-%m-%d')})",
        "",
        "Random-weight replicas (benchmarks.models): their logits are damped by 10 over a "
        "fixed spread, so a score here moves a tenth of what the undamped network's would; "
        "what is compared is how the same architecture answers the two preparations.",
        "",
        "| replica | pictures | tags at the threshold on both / on either "
        "| largest score change a picture, mean | largest |",
        "|---|---|---|---|---|",
    ]
    for name in ("wd-vit-v2", "caformer"):
        model = args.models / f"{name}.model"
        for kind, pictures in sets.items():
            lines.append(f"| {name} | {kind} ({len(pictures)}) | {compare(model, pictures)} |")
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{time.strftime('%Y-%m-%d')}-agreement.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
