#!/usr/bin/env bash
# The first session with a GPU: every `#| gpu` cell, results into assets/.
#   bash tools/gpu_check.sh tests   correctness under TORCH_CUDA_SANITIZER=1: equivalence with PEFT on CUDA (fp32, bf16, fp16),
#                                   slots 1/2/3, with and without checkpointing, 4-bit, pinned bytes and close(), device
#                                   memory flat over 500 steps, the budget against torch.cuda.memory_allocated
#   bash tools/gpu_check.sh speed   the GPU cells of nbs/benchmarks/speed.ipynb (assets/*_gpu.csv)
#   bash tools/gpu_check.sh vram    the GPU cells of nbs/benchmarks/vram.ipynb
# The GPU machine may have no internet and only torch, transformers and peft: on a machine with registry access run
#   bash tools/gpu_check.sh --download wheels      (nbdev and bitsandbytes, ~55 MB)
# carry `wheels/` along, and run with WHEELS=wheels. Each stage is one command (the device tool allows 10 minutes a call).
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-tests}"
if [[ "$stage" == "--download" ]]; then python -m pip download --only-binary=:all: -d "${2:-wheels}" nbdev "bitsandbytes>=0.50"; exit 0; fi
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'tools/gpu_check.sh needs a CUDA device')"
if ! python -c "import nbdev, bitsandbytes" 2>/dev/null; then
    python -m pip install --quiet ${WHEELS:+--no-index --find-links "$WHEELS"} nbdev "bitsandbytes>=0.50"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # lema from this checkout, no build step
mkdir -p assets
nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv | tee "assets/gpu_check_device.txt"
case "$stage" in
    tests) TORCH_CUDA_SANITIZER=1 python tools/run_tests.py --workers 1 --flags gpu \
               nbs/01a_quant.ipynb nbs/02_memory.ipynb nbs/04_adapters.ipynb nbs/06_model.ipynb nbs/09_reliability.ipynb \
               2>&1 | tee "assets/gpu_check_tests.txt" ;;
    speed|vram) python tools/run_tests.py --workers 1 --flags gpu "nbs/benchmarks/$stage.ipynb" 2>&1 | tee "assets/gpu_check_$stage.txt" ;;
    *) echo "unknown stage $stage (tests, speed, vram, --download DIR)"; exit 2 ;;
esac
