# shellcheck shell=bash
# Sourced by scripts/cuda-check.sh and scripts/gpu-check.sh: finds a CUDA toolkit (nvcc and
# the CUDA headers) and exports what the `cuda` build of prolong-train needs.
#
#   source scripts/cuda-env.sh && cuda_env || echo "no CUDA toolkit"
#
# Order: $CUDA_ROOT if it has bin/nvcc; nvcc on PATH; /usr/local/cuda; else NVIDIA's
# compiler and runtime from PyPI (pinned below), installed once with pip into
# ${PROLONG_CUDA_CACHE:-$HOME/.cache/prolong-rs/cuda-13.0} (never in the repository).
# The PyPI wheels are CUDA 13.0: the cu12 nvcc wheels ship ptxas but no nvcc. cudarc reads
# the version from `nvcc --version`; candle-kernels and build.rs compile PTX for
# $CUDA_COMPUTE_CAP (90 = H100/H200 unless set), which is required without a GPU.
# pip's output goes to <cache>.log. Returns 1 (printing nothing) when no toolkit can be had.

CUDA_WHEELS=(
  "nvidia-cuda-nvcc==13.0.88"
  "nvidia-cuda-crt==13.0.88"
  "nvidia-nvvm==13.0.88"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-cccl==13.0.85"
)

# Installs the wheels into the cache (to <cache>.tmp, renamed when complete) unless there.
cuda_wheels() {
  local cache=${PROLONG_CUDA_CACHE:-${HOME:-/root}/.cache/prolong-rs/cuda-13.0}
  if [[ ! -x $cache/nvidia/cu13/bin/nvcc ]]; then
    command -v python3 >/dev/null || return 1
    mkdir -p "$(dirname "$cache")" || return 1
    rm -rf "$cache.tmp"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-input \
      --target "$cache.tmp" "${CUDA_WHEELS[@]}" >"$cache.log" 2>&1 || return 1
    rm -rf "$cache" && mv "$cache.tmp" "$cache" || return 1
  fi
  local root=$cache/nvidia/cu13
  # The linker and cudarc look for lib64/ and unversioned sonames.
  [[ -e $root/lib64 ]] || ln -s lib "$root/lib64"
  [[ -e $root/lib/libcudart.so ]] || ln -s libcudart.so.13 "$root/lib/libcudart.so"
  echo "$root"
}

cuda_env() {
  local root=
  if [[ -n ${CUDA_ROOT:-} && -x ${CUDA_ROOT}/bin/nvcc ]]; then
    root=$CUDA_ROOT
  elif command -v nvcc >/dev/null; then
    root=$(dirname "$(dirname "$(command -v nvcc)")")
  elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
    root=/usr/local/cuda
  else
    root=$(cuda_wheels) || return 1
  fi
  export CUDA_ROOT=$root CUDA_PATH=$root CUDA_HOME=$root
  export PATH=$root/bin:$PATH
  export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
}
