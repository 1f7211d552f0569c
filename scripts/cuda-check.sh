#!/usr/bin/env bash
# Compile check of prolong-train's `cuda` feature on a machine without a GPU (what
# `make test` runs): the fused kernels are compiled to PTX, candle's CUDA backend and the
# CUDA launchers and NCCL wrappers are compiled and type-checked, tests and binaries
# included. Nothing is linked: linking needs the driver and CUDA libraries
# (libcuda, cuBLAS, NCCL), which only a GPU machine has; scripts/gpu-check.sh links and runs.
#
#   scripts/cuda-check.sh
#
# The toolkit comes from scripts/cuda-env.sh (PyPI wheels cached under ~/.cache when
# there is no local CUDA). Builds into target/cuda so the CPU build is left alone.
# When no toolkit can be had, prints one line saying the check was skipped and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cuda-env.sh
source scripts/cuda-env.sh
if ! cuda_env; then
  echo "cuda-check: skipped (no CUDA toolkit, and NVIDIA's nvcc wheels could not be installed from PyPI)"
  exit 0
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/cuda}
start=$SECONDS
cargo build --quiet -p prolong-train --features cuda --lib
cargo check --quiet -p prolong-train -p prolong-eval --features cuda --all-targets
echo "cuda-check: prolong-train and prolong-eval build with --features cuda (sm_${CUDA_COMPUTE_CAP}, $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/CUDA \1/p'), $((SECONDS - start)) s)"
