#!/usr/bin/env bash
# Install Open MPI (and libclang, which the `mpi` crate's bindings generator
# needs at build time) from Debian's packages, for prolong-train's `mpi`
# feature: CPU ranks over MPI, which the distributed tests run on.
#
#   scripts/install-mpi.sh             # install what is missing; one line of output
#   scripts/install-mpi.sh --features  # print the cargo flag that turns the feature on
#                                      # (nothing when MPI is not usable)
#
# Packages: libopenmpi-dev openmpi-bin libclang-dev (about 200 MB on disk).
# Installing needs root and apt-get; without them it says what is missing and
# exits 0, and the MPI tests are left out of the build (`make test` then runs
# without the feature). apt's output goes to a log named in the line.
set -uo pipefail

usable() {
  command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 &&
    ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1
}

if [[ "${1:-}" == "--features" ]]; then
  usable && echo "--features prolong-train/mpi"
  exit 0
fi

if usable; then
  echo "install-mpi: Open MPI $(mpirun --version 2>/dev/null | head -1 | awk '{print $NF}') and libclang present"
  exit 0
fi

LOG="${TMPDIR:-/tmp}/install-mpi.log"
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 &&
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends libopenmpi-dev openmpi-bin libclang-dev; } >"$LOG" 2>&1 &&
  usable; then
  echo "install-mpi: installed Open MPI $(mpirun --version 2>/dev/null | head -1 | awk '{print $NF}') and libclang (log: $LOG)"
else
  echo "install-mpi: Open MPI not available (needs root and apt-get; log: $LOG): the MPI tests are left out"
fi
exit 0
