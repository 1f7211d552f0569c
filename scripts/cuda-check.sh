#!/usr/bin/env bash
# Compile check of the `cuda` feature on a machine without a GPU (what `make test` runs):
# `cargo build --lib --features cuda` of prolong-train and prolong-eval. candle's CUDA
# kernels and ours (kernels/*.cu, by build.rs) are compiled by nvcc, the launchers and
# NCCL wrappers by rustc. Libraries only: executables (the CLIs, the CUDA tests) link
# the driver and CUDA libraries (libcuda, cuBLAS, cuRAND, NVRTC, NCCL) that candle's CUDA
# backend needs and only a GPU machine has; scripts/gpu-check.sh builds and runs those.
#
#   scripts/cuda-check.sh                    # what `make test` runs: our kernels only
#   CUDA_CHECK=full scripts/cuda-check.sh    # the whole `--features cuda` build (libraries)
#   CUDA_CHECK=release scripts/cuda-check.sh # the release binary, linked against stubs
#
# By default only our kernels (kernels/*.cu) are compiled, to PTX with build.rs's nvcc
# flags and then by ptxas to machine code for sm_$CUDA_COMPUTE_CAP: a minute or two, where
# the full build below takes ~45 minutes cold on two cores (candle's quantized kernels),
# too much for every `make test`. CUDA_CHECK=full runs the full build. CUDA_CHECK=release
# builds the release prolong-train executable (`cargo build --release -p prolong-train
# --features cuda`, its own ~45 minutes cold), linking it against link stubs of the
# driver and CUDA libraries (scripts/cuda-link-stubs.sh) when they are not installed: it
# checks that the executable links, and the result runs on a GPU machine.
#
# The toolkit comes from scripts/cuda-env.sh (PyPI wheels cached under ~/.cache when
# there is no local CUDA). Builds into its own target folder, so the CPU build is left
# alone: ~/.cache/prolong-rs/target-cuda unless CARGO_TARGET_DIR is set. It lives outside
# the clone because candle's CUDA kernels (quantized matmuls compiled to machine code) take
# most of an hour on two cores from cold; a kept folder makes later runs incremental.
# When no toolkit can be had, prints one line saying the check was skipped and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/cuda-env.sh
source scripts/cuda-env.sh
if ! cuda_env; then
  echo "cuda-check: skipped (no CUDA toolkit, and NVIDIA's nvcc wheels could not be installed from PyPI)"
  exit 0
fi
if [[ ${CUDA_CHECK:-kernels} != full && ${CUDA_CHECK:-} != release ]]; then
  start=$SECONDS
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for src in crates/prolong-train/kernels/*.cu; do
    ptx=$tmp/$(basename "${src%.cu}").ptx
    nvcc --ptx -O3 -std=c++17 --use_fast_math "-arch=compute_${CUDA_COMPUTE_CAP}" -o "$ptx" "$src"
    ptxas "-arch=sm_${CUDA_COMPUTE_CAP}" -o "$tmp/out.cubin" "$ptx"
  done
  echo "cuda-check: kernels/*.cu compile to PTX and sm_${CUDA_COMPUTE_CAP} machine code ($((SECONDS - start)) s); the full --features cuda build: CUDA_CHECK=full scripts/cuda-check.sh"
  exit 0
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/prolong-rs/target-cuda}
start=$SECONDS
if [[ ${CUDA_CHECK:-} == release ]]; then
  # shellcheck source=scripts/cuda-link-stubs.sh
  source scripts/cuda-link-stubs.sh
  stubs=$CARGO_TARGET_DIR/cuda-link-stubs
  cuda_link_stubs "$stubs"
  LIBRARY_PATH=$CUDA_ROOT/lib:${LIBRARY_PATH:-}:$stubs cargo build --quiet --release -p prolong-train --features cuda
  echo "cuda-check: the release prolong-train builds and links with --features cuda (sm_${CUDA_COMPUTE_CAP}, $((SECONDS - start)) s): $CARGO_TARGET_DIR/release/prolong-train"
  exit 0
fi
cargo build --quiet --lib -p prolong-train -p prolong-eval --features cuda
echo "cuda-check: prolong-train and prolong-eval build with --features cuda (sm_${CUDA_COMPUTE_CAP}, $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/CUDA \1/p'), $((SECONDS - start)) s)"
