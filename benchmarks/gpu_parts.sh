#!/usr/bin/env bash
# Prepare the GPU check's cargo (issues 5 and 13): wheels the GPU machine lacks, for its
# Python 3.12. One device call carries at most 64 MiB, and the onnxruntime-gpu wheel is
# 255 MB: its files, repacked as tar.xz (203 MB, about 3 minutes on 2 cores), travel in
# parts of 62 MiB, one per call, so four calls carry it where the wheel's own zip needed
# five. Everything lands in .gpu/ (git-ignored); see benchmarks/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out" && mkdir -p "$out/whl" "$out/ort/files"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
download() {
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d "$1" "${@:2}"
}
# The machine has torch, timm, onnx, pillow, numpy, xxhash, tqdm and scikit-image, not
# these (imagecodecs: dtindex's `fast` extra, as on the 2-core runs):
download "$out/whl" sqlalchemy alembic mako watchdog imagecodecs
download "$out/ort" "onnxruntime-gpu==${ORT_GPU_VERSION:-1.31.1}"
# The GPU decode (issue 26): nvImageCodec for CUDA 13 and its nvJPEG wheel (29 MB, one
# call of their own; `pip download nvidia-nvimgcodec-cu13 --no-deps` reached PyPI here).
mkdir -p "$out/nvimg"
download "$out/nvimg" nvidia-nvimgcodec-cu13 nvidia-nvjpeg
wheel=$(ls "$out"/ort/onnxruntime_gpu-*.whl)
python3 -m zipfile -e "$wheel" "$out/ort/files"
tar -C "$out/ort/files" -cf - . | xz -T0 -9 > "$out/ort/ort.tar.xz"
rm -rf "$out/ort/files" "$wheel"
(cd "$out/ort" && split -b 62M -d ort.tar.xz ort.tar.xz.part- \
    && sha256sum ort.tar.xz > SHA256 && rm ort.tar.xz)
ls -l "$out"/whl "$out"/ort "$out"/nvimg
