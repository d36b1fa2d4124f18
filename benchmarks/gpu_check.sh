#!/usr/bin/env bash
# The GPU check's steps on the lent machine (benchmarks/GPU.md): one device call each.
#   part                 keep the carried part of onnxruntime-gpu in /tmp/ort
#   pipeline [ARGS...]   install, check the providers, run benchmarks.pipeline (null model)
#   replica MODEL [ARGS] benchmarks.pipeline with a random-weight replica on the GPU
#   decode [ARGS]        install the carried nvImageCodec wheels, run benchmarks.gpu_decode
# Results go to $OUT (the device tool brings them back).
set -euo pipefail
step=${1:?part, pipeline or replica}
shift
: "${OUT:=/tmp/gpu-out}"
mkdir -p "$OUT"
log=$OUT/$step.log

part() {
    mkdir -p /tmp/ort && cp .gpu/ort/ort.tar.xz.part-* /tmp/ort/ && ls -l /tmp/ort
}

install() {
    # The machine's own python holds torch and its CUDA 13 wheels (nvidia/cu13, cudnn);
    # onnxruntime-gpu goes beside a link to them, as `pip install 'dtindex[cuda]'` would
    # lay them out, so dtindex's preload (models/runtime.py) is what finds them.
    local nvidia
    nvidia=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])')
    cp .gpu/ort/* /tmp/ort/
    (cd /tmp/ort && cat ort.tar.xz.part-* > ort.tar.xz && sha256sum -c SHA256)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl
    tar -C /tmp/site -xJf /tmp/ort/ort.tar.xz
    ln -sfn "$nvidia" /tmp/site/nvidia
}

environment() {
    test -d /tmp/site || { echo "the machine went cold: start again with part"; exit 1; }
    ln -sfn "$PWD/migrations" /tmp/site/dtindex_migrations  # pyproject's package-dir
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
}

providers() {
    {
        nproc
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
        python3 -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())"
    } 2>&1 | tee -a "$log"
    python3 -c "from pathlib import Path; from benchmarks import corpus, models; \
        models.null(Path('/tmp/null')); corpus.build(Path('/tmp/null'), 1)"
    python3 -m indexer tag -d /tmp/null/null.model /tmp/null/000-*.jpg 2>&1 >/dev/null \
        | grep -i "session uses\|fell back\|preloaded\|error" | tee -a "$log"
}

measured() {
    nvidia-smi dmon -s u -d 1 > "$OUT/dmon-$1.log" &
    local dmon=$!
    shift
    "$@" 2>&1 | tee -a "$log"
    kill "$dmon"
}

case $step in
    part) part ;;
    pipeline)
        test -d /tmp/site || install
        environment
        providers
        measured pipeline python3 -m benchmarks.pipeline --profile --out "$OUT" "$@"
        ;;
    replica)
        environment
        model=${1:?which replica}
        shift
        measured "$model" python3 -m benchmarks.pipeline --model "$model" --out "$OUT" "$@"
        ;;
    decode)
        environment
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
            .gpu/nvimg/*.whl
        python3 -c "from nvidia import nvimgcodec; print('nvimgcodec', nvimgcodec.__version__)" \
            2>&1 | tee -a "$log"
        measured decode python3 -m benchmarks.gpu_decode --out "$OUT" "$@"
        ;;
    *) echo "unknown step $step"; exit 2 ;;
esac
