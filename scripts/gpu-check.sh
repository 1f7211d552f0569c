#!/usr/bin/env bash
# The CUDA path on a machine with one NVIDIA GPU (H100/H200), in under 8 minutes:
#   1. builds prolong-train with --features cuda (PTX for this GPU's compute capability);
#   2. runs the CUDA tests: fused attention forward and backward, RMSNorm, RoPE, SiLU·mul
#      and cross-entropy against the CPU path on random inputs with random document
#      boundaries (bf16 tolerance), one training step GPU against CPU, the loss falling on
#      the KJV fixture (scripts/fetch-fixtures.sh);
#   3. prints the table: attention fwd+bwd TFLOP/s at 8K and 64K, training tokens/s and
#      MFU of a ~1B Llama at 64K with document masking (PEAK_TFLOPS, default 989).
#
#   scripts/gpu-check.sh
#
# Needs the NVIDIA driver and a CUDA toolkit with cuBLAS, cuRAND, NVRTC and NCCL
# libraries (candle's CUDA backend links them): $CUDA_ROOT, nvcc on PATH, /usr/local/cuda,
# or, where PyPI is reachable, nvcc from scripts/cuda-env.sh's wheels. Exit 0 only when
# every test passed. Builds into target/cuda.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cuda-env.sh
source scripts/cuda-env.sh
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi -L failed)" >&2
  exit 1
fi
CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}
export CUDA_COMPUTE_CAP
if ! cuda_env; then
  echo "gpu-check: no CUDA toolkit (nvcc) found and none could be installed" >&2
  exit 1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
# The libraries next to nvcc (toolkit or wheels) for the linker and at run time.
export LIBRARY_PATH=$CUDA_ROOT/lib64:$CUDA_ROOT/lib:${LIBRARY_PATH:-}
export LD_LIBRARY_PATH=$CUDA_ROOT/lib64:$CUDA_ROOT/lib:${LD_LIBRARY_PATH:-}
echo "gpu-check: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), sm_$CUDA_COMPUTE_CAP, $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/CUDA \1/p')"
start=$SECONDS
run() { cargo test --release -p prolong-train --features cuda "$@"; }
run --no-run --test it
echo "gpu-check: built in $((SECONDS - start)) s"
run --test it -- cuda_ops:: cuda_train::
run --test it -- cuda_bench:: --ignored --nocapture --test-threads 1
echo "gpu-check: passed in $((SECONDS - start)) s"
