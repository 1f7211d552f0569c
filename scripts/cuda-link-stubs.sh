# shellcheck shell=bash
# Sourced by scripts/cuda-check.sh (CUDA_CHECK=release): link stubs for the libraries
# candle's CUDA backend and our NCCL calls link (libcuda, libnccl, libnvrtc, libcurand,
# libcublas, libcublasLt), so that the `--features cuda` *executable* links on a machine
# that has neither the driver nor those libraries (the PyPI toolkit wheels bring nvcc and
# the runtime only). The same idea as the toolkit's own lib64/stubs/libcuda.so: every
# function cudarc declares (its sys bindings, read from the cudarc source cargo fetched)
# defined as an empty function in a shared library with the real library's soname. The
# binary records those sonames and, on a GPU machine, loads the real libraries; it never
# runs against the stubs (they are only on the link path, never LD_LIBRARY_PATH).
#
#   source scripts/cuda-link-stubs.sh && cuda_link_stubs DIR   # then LIBRARY_PATH=DIR:...
#
# Returns 1 (printing why) when cudarc's source or a C compiler is missing.

cuda_link_stubs() {
  local dir=$1
  local cudarc
  cudarc=$(cargo metadata --format-version 1 --locked --offline --features prolong-train/cuda 2>/dev/null |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"))' 2>/dev/null) || {
    echo "cuda-link-stubs: cudarc is not among the locked dependencies" >&2
    return 1
  }
  local src
  src=$(dirname "$cudarc")/src
  command -v cc >/dev/null || {
    echo "cuda-link-stubs: no C compiler (cc)" >&2
    return 1
  }
  mkdir -p "$dir"
  # module of cudarc's sys bindings, library, soname (CUDA 13 / NCCL 2).
  local spec
  for spec in driver:cuda:libcuda.so.1 nccl:nccl:libnccl.so.2 nvrtc:nvrtc:libnvrtc.so.13 \
    curand:curand:libcurand.so.10 cublas:cublas:libcublas.so.13 \
    cublaslt:cublasLt:libcublasLt.so.13; do
    local module=${spec%%:*} rest=${spec#*:}
    local lib=${rest%%:*} soname=${rest#*:}
    [[ -f $dir/lib$lib.so ]] && continue
    sed -nE 's/^\s+fn ([A-Za-z0-9_]+)\(.*/void \1(void) {}/p' "$src/$module/sys/mod.rs" |
      sort -u >"$dir/$lib.c"
    cc -shared -fPIC -o "$dir/lib$lib.so.tmp" "-Wl,-soname,$soname" "$dir/$lib.c" || return 1
    mv "$dir/lib$lib.so.tmp" "$dir/lib$lib.so"
  done
}
