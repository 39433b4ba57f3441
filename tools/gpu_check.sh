#!/usr/bin/env bash
# The first session with a GPU: every `#| gpu` cell, results into assets/.
#   bash tools/gpu_check.sh tests   correctness under TORCH_CUDA_SANITIZER=1: equivalence with PEFT on CUDA (fp32, bf16, fp16),
#                                   slots 1/2/3, with and without checkpointing, 4-bit, pinned bytes and close(), device
#                                   memory flat over 500 steps, the budget against torch.cuda.memory_allocated
#   bash tools/gpu_check.sh speed   the GPU cells of nbs/benchmarks/speed.ipynb (assets/*_gpu.csv)
#   bash tools/gpu_check.sh vram    the GPU cells of nbs/benchmarks/vram.ipynb
#   bash tools/gpu_check.sh quick   tools/gpu_quick.py, at most 6 minutes, capped at 16 GB (issue 21): device="cuda",
#                                   PEFT equivalence in every memory mode and under injected delays, syncs per layer,
#                                   a 2-step profile, memory over NaN batches and close(), fp16 vs fp32, the plan
#                                   at 7B, the seed's call against PEFT (issue 23: checkpointed <= 1.00x), into
#                                   assets/gpu_quick* (and $OUT when set). Needs only torch, transformers and peft; the
#                                   wheels in $WHEELS (default .whl/) are installed if there: fastcore (lema imports
#                                   it) and bitsandbytes (the 4-bit checks; without it they are SKIPPED).
# The GPU machine may have no internet and only torch, transformers and peft: on a machine with registry access run
#   bash tools/gpu_check.sh --download wheels      (nbdev and bitsandbytes, ~55 MB)
#   bash tools/gpu_check.sh --download-quick .whl  (fastcore and bitsandbytes for Python 3.12 x86-64, ~43 MB: for quick)
# carry `wheels/` (or `.whl/`) along, and run with WHEELS=wheels. Each stage is one command (the device tool allows
# 10 minutes a call). Quick, with the device tool: `bash tools/gpu_check.sh quick`, carry [".whl"], timeout_s 420.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-tests}"
PY="$(command -v python3 || command -v python)"
if [[ "$stage" == "--download" ]]; then "$PY" -m pip download --only-binary=:all: -d "${2:-wheels}" nbdev "bitsandbytes>=0.50"; exit 0; fi
if [[ "$stage" == "--download-quick" ]]; then  # for the GPU machine's Python, whatever this one is; no dependencies
    plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64)
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
        -d "${2:-.whl}" fastcore "bitsandbytes>=0.50"
    exit 0
fi
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'tools/gpu_check.sh needs a CUDA device')"
if [[ "$stage" == "quick" ]]; then  # only what is carried, never the network; a wheel that fails to install is no stop
    wheels="${WHEELS:-.whl}"
    if compgen -G "$wheels/*.whl" > /dev/null; then
        if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
               --target /tmp/lema-wheels "$wheels"/*.whl
        then export PYTHONPATH="/tmp/lema-wheels${PYTHONPATH:+:$PYTHONPATH}"
        else echo "gpu_check quick: the wheels in $wheels did not install; going on without them"; fi
    else echo "gpu_check quick: no wheels in $wheels (lema needs fastcore to import; the 4-bit checks bitsandbytes)"; fi
elif ! "$PY" -c "import nbdev, bitsandbytes" 2>/dev/null; then
    "$PY" -m pip install --quiet ${WHEELS:+--no-index --find-links "$WHEELS"} nbdev "bitsandbytes>=0.50"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # lema from this checkout, no build step
mkdir -p assets
nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv | tee "assets/gpu_check_device.txt"
case "$stage" in
    tests) TORCH_CUDA_SANITIZER=1 "$PY" tools/run_tests.py --workers 1 --flags gpu \
               nbs/01a_quant.ipynb nbs/02_memory.ipynb nbs/04_adapters.ipynb nbs/06_model.ipynb nbs/09_reliability.ipynb \
               2>&1 | tee "assets/gpu_check_tests.txt" ;;
    speed|vram) "$PY" tools/run_tests.py --workers 1 --flags gpu "nbs/benchmarks/$stage.ipynb" 2>&1 | tee "assets/gpu_check_$stage.txt" ;;
    quick)  # what ran comes back through $OUT (the device tool's folder), also when a check fails or time runs out
        results=(assets/gpu_quick.{json,csv,txt} assets/gpu_quick_{memory.csv,profile.txt}
                 assets/gpu_check_{quick,device}.txt)
        trap 'if [[ -n "${OUT:-}" ]]; then cp "${results[@]}" "$OUT"/ 2>/dev/null || true; fi' EXIT
        PYTHONUNBUFFERED=1 timeout -k 10 350 "$PY" tools/gpu_quick.py --budget-s 290 2>&1 \
            | tee "assets/gpu_check_quick.txt" ;;
    *) echo "unknown stage $stage (tests, speed, vram, quick, --download DIR, --download-quick DIR)"; exit 2 ;;
esac
