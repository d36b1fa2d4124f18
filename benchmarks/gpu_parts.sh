#!/usr/bin/env bash
# Prepare the GPU check's cargo (issue 5): wheels the GPU machine lacks, for its Python 3.12,
# with the 255 MB onnxruntime-gpu wheel split into parts under 60 MB, since one device call
# carries at most 64 MiB. Everything lands in .gpu/ (git-ignored); see benchmarks/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out" && mkdir -p "$out/whl" "$out/ort"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
download() {
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d "$1" "${@:2}"
}
# The machine has torch, timm, onnx, pillow, numpy, xxhash and scikit-image, not these:
download "$out/whl" sqlalchemy alembic mako watchdog
download "$out/ort" "onnxruntime-gpu==${ORT_GPU_VERSION:-1.31.1}"
wheel=$(ls "$out"/ort/onnxruntime_gpu-*.whl)
(cd "$out/ort" && split -b 55M -d "$(basename "$wheel")" "$(basename "$wheel").part-" \
    && sha256sum "$(basename "$wheel")" > SHA256 && rm "$(basename "$wheel")")
ls -l "$out"/whl "$out"/ort
