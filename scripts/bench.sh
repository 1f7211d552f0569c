#!/usr/bin/env bash
# `make bench`: every benchmark, each printing a table of ratios against a
# baseline measured in the same run (memory copy speed, the tokenizers crate,
# tiktoken, mosaicml-streaming, PyTorch; for the CPU ranks, one rank and the
# plan's prediction). Absolute numbers on a shared
# machine are noise; the ratios are the result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-python-peers.sh || true
run() {
  local crate=$1 example=$2; shift 2
  if [ -f "crates/$crate/examples/$example.rs" ]; then
    echo
    echo "## $crate: $example"
    cargo run --release -q -p "$crate" --example "$example" -- "$@"
  fi
}
run prolong-mds read_bench
run prolong-data tokenize_bench
run prolong-data pack_bench
run prolong-train train_bench
# CPU ranks (MPI): 1 -> 2 ranks scaling, time inside collectives, plan vs measured
# memory. The ranks are the release binary built with the mpi feature.
if bash scripts/install-mpi.sh && command -v mpirun >/dev/null; then
  cargo build --release -q -p prolong-train --features mpi --bin prolong-train
  run prolong-train dist_bench --exe target/release/prolong-train
else
  echo "## prolong-train: dist_bench skipped (no Open MPI)"
fi
