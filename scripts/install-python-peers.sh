#!/usr/bin/env bash
# Install the Python peer tools that the optional interop tests and benchmarks
# compare against, into the environment of `python3` (or $PYTHON):
#
#   streaming     mosaicml-streaming: MDS shards written/read by the peer
#   tiktoken      encode_ordinary parity of the tokenize stage
#   torch         CPU reference for the model (HF golden logits/grads)
#   transformers  LlamaForCausalLM reference (same version as fixtures/hf-llama)
#
# Each one is installed only when `import <module>` fails. Only PyPI is used.
# This means torch comes with CUDA: PyPI has no CPU-only x86_64 torch wheel,
# and `import torch` needs the CUDA shared libraries even on a machine with no
# GPU. To keep it as light as possible, torch is installed with --no-deps plus
# only the dependencies that `import torch` loads. Left out: triton (only for
# torch.compile), cuda-bindings, and the cusolver/nvtx CUDA components (loaded
# lazily or optional). That saves ~0.5 GB of download (triton 0.29 GB and
# cusolver 0.23 GB wheels), and more on disk.
# mosaicml-streaming is installed with --no-deps too, plus only what
# `import streaming` and its local MDSWriter/StreamingDataset paths import
# (no boto3/google-cloud/azure/oci/paramiko/matplotlib).
# In total: ~2.3 GB downloaded and ~4.2 GB on disk; 160 s on a 2-core
# machine. A run with everything already importable takes ~10 s, because it
# imports all four to check them.
#
# Note: tiktoken.get_encoding() downloads its BPE files at run time, which
# needs a network that is not there. Tests should build a tiktoken.Encoding
# from fixtures/cache/tokenizer.json instead.
#
# Never fails: it always exits 0 and prints exactly one line, saying what is
# importable. If something could not be installed, the line names the peer
# tests that will be skipped. pip's output goes to a log, named in that line.
# On a Debian-managed python3 (PEP 668), the packages go into the system
# site-packages (PIP_BREAK_SYSTEM_PACKAGES=1). Run it as root there, or
# use a venv's python as $PYTHON.
set -uo pipefail

# ---------------------------------------------------------------------------
# Pinned versions.
# ---------------------------------------------------------------------------
TIKTOKEN="tiktoken==0.14.0"
TORCH="torch==2.15.0"
TRANSFORMERS="transformers==4.57.6"   # fixtures/hf-llama was made with 4.57
STREAMING="mosaicml-streaming==0.13.0"
TORCHVISION="torchvision==0.29.2"     # `import streaming` imports streaming.vision
# What mosaicml-streaming's import path and local read/write paths need
# (besides torch, torchvision and transformers):
STREAMING_DEPS=(numpy pillow brotli python-snappy zstd xxhash catalogue tqdm)
# mosaicml-streaming 0.13.0's declared ranges for what it shares with the rest.
CONSTRAINTS=("numpy>=1.21.5,<2.2.0" "xxhash>=3.0.0,<4")
# torch's requirements that `import torch` on a CPU does not need.
TORCH_SKIP_DEPS="triton cuda-bindings"
TORCH_SKIP_EXTRAS="cusolver nvtx all"
# Free space that a torch install needs: site-packages, and the temp folder
# where pip keeps the downloaded wheels until the install ends.
TORCH_NEED_SITE_GB=5
TORCH_NEED_TMP_GB=3

# What is skipped when a peer is missing.
declare -A SKIPS=(
  [streaming]="MDS interop tests and benchmarks against mosaicml-streaming"
  [tiktoken]="tiktoken tokenizer-parity tests"
  [torch]="PyTorch/transformers Llama reference tests and benchmarks"
  [transformers]="PyTorch/transformers Llama reference tests and benchmarks"
)
PEERS=(streaming tiktoken torch transformers)

# ---------------------------------------------------------------------------
PY="${PYTHON:-python3}"
START=$SECONDS
LOG="${TMPDIR:-/tmp}/install-python-peers.log"
: >"$LOG" 2>/dev/null || LOG=/dev/null
WORK="$(mktemp -d "${TMPDIR:-/tmp}/install-python-peers.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

declare -A WHY=()   # peer -> why it could not be installed
INSTALLED=()
PRESENT=()

log() { printf '%s\n' "$*" >>"$LOG"; }
importable() { "$PY" -c "import $1" >/dev/null 2>&1; }

# probe: import every peer in one python process (importing them takes ~8 s in
# all) and fill VERSION[peer] for each one that imports.
declare -A VERSION=()
probe() {
  VERSION=()
  local name ver
  while read -r name ver; do
    [[ -n "$name" ]] && VERSION[$name]="$ver"
  done < <("$PY" - "${PEERS[@]}" 2>>"$LOG" <<'PY'
import importlib, importlib.metadata as md, sys
dist = {"streaming": "mosaicml-streaming"}
for m in sys.argv[1:]:
    try:
        importlib.import_module(m)
    except Exception as e:
        print(f"import {m}: {type(e).__name__}: {e}", file=sys.stderr)
        continue
    try:
        v = md.version(dist.get(m, m))
    except Exception:
        v = "?"
    print(m, v, flush=True)
PY
)
}
is_ok() { [[ -n "${VERSION[$1]:-}" ]]; }

# pip_install ARGS...: pip install with the constraints, output to the log.
# --no-cache-dir: the wheels (2.3 GB for torch) are not kept a second time.
pip_install() {
  log "+ pip install $*"
  "$PY" -m pip install -q --no-cache-dir --progress-bar off -c "$WORK/constraints.txt" "$@" \
    >>"$LOG" 2>&1 </dev/null
}

free_gb() { # DIR -> free GiB on its filesystem
  local d="$1"
  while [[ ! -d "$d" ]]; do d="$(dirname "$d")"; done
  df -Pk "$d" | awk 'NR==2 { print int($4 / 1048576) }'
}

summary_and_exit() { # [--no-probe]: VERSION is already up to date
  [[ "${1:-}" == --no-probe ]] || probe
  local p ok=() vers=() missing=() skipped=() s seen=""
  for p in "${PEERS[@]}"; do
    if is_ok "$p"; then ok+=("$p"); vers+=("$p ${VERSION[$p]}"); else missing+=("$p"); fi
  done
  local secs=$((SECONDS - START))
  local inst="${INSTALLED[*]:-nothing}"
  if ((${#missing[@]} == 0)); then
    local v; v="$(printf '%s, ' "${vers[@]}")"
    echo "install-python-peers: importable: ${v%, } (installed now: $inst; ${secs}s)"
    exit 0
  fi
  local why=() m
  for m in "${missing[@]}"; do
    why+=("$m: ${WHY[$m]:-not importable}")
    s="${SKIPS[$m]}"
    [[ "$seen" == *"|$s|"* ]] || { skipped+=("$s"); seen+="|$s|"; }
  done
  local skip_list; skip_list="$(printf '%s; ' "${skipped[@]}")"
  local why_list; why_list="$(printf '%s; ' "${why[@]}")"
  echo "install-python-peers: not installed (${why_list%; }): will skip ${skip_list%; }; importable: ${ok[*]:-none} (log: $LOG; ${secs}s)"
  exit 0
}

# ---------------------------------------------------------------------------
# python3 and pip themselves.
if ! "$PY" -c 'import sys' >/dev/null 2>&1; then
  for p in "${PEERS[@]}"; do WHY[$p]="no $PY"; done
  summary_and_exit
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 &&
     { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip; } >>"$LOG" 2>&1; then
    log "installed python3-pip"
  fi
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    for p in "${PEERS[@]}"; do WHY[$p]="no pip for $PY"; done
    summary_and_exit
  fi
fi
printf '%s\n' "${CONSTRAINTS[@]}" >"$WORK/constraints.txt"

probe
ALL_OK=1
for p in "${PEERS[@]}"; do is_ok "$p" || ALL_OK=0; done
((ALL_OK)) && summary_and_exit --no-probe

# --- tiktoken --------------------------------------------------------------
if is_ok tiktoken; then
  PRESENT+=(tiktoken)
elif pip_install "$TIKTOKEN" && importable tiktoken; then
  INSTALLED+=(tiktoken); VERSION[tiktoken]=new
else
  WHY[tiktoken]="pip install $TIKTOKEN failed"
fi

# --- torch -----------------------------------------------------------------
install_torch() {
  local site tmp
  site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)" || site=/
  tmp="${TMPDIR:-/tmp}"
  if (($(free_gb "$site") < TORCH_NEED_SITE_GB)) || (($(free_gb "$tmp") < TORCH_NEED_TMP_GB)); then
    WHY[torch]="needs ${TORCH_NEED_SITE_GB} GiB free in $site and ${TORCH_NEED_TMP_GB} GiB in $tmp"
    return 1
  fi
  if ! pip_install --no-deps "$TORCH"; then
    WHY[torch]="pip install $TORCH failed"; return 1
  fi
  # torch's own requirements, less the ones a CPU import does not need.
  if ! "$PY" - "$TORCH_SKIP_DEPS" "$TORCH_SKIP_EXTRAS" >"$WORK/torch-deps.txt" 2>>"$LOG" <<'PY'
import sys
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
skip = set(sys.argv[1].split())
skip_extras = set(sys.argv[2].split())
for line in md.requires("torch") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if req.name.lower() in skip:
        continue
    req.extras = set(req.extras) - skip_extras
    req.marker = None
    print(req)
PY
  then
    WHY[torch]="cannot read torch's requirements"; return 1
  fi
  log "torch deps: $(tr '\n' ' ' <"$WORK/torch-deps.txt")"
  if ! pip_install -r "$WORK/torch-deps.txt"; then
    WHY[torch]="pip install of torch's CUDA/runtime dependencies failed"; return 1
  fi
  if ! "$PY" -c 'import torch; assert float((torch.ones(4) @ torch.ones(4))) == 4.0' >>"$LOG" 2>&1; then
    WHY[torch]="installed, but import torch fails"; return 1
  fi
}
if is_ok torch; then
  PRESENT+=(torch)
elif install_torch; then
  INSTALLED+=(torch); VERSION[torch]=new
fi

# --- transformers ----------------------------------------------------------
if is_ok transformers; then
  PRESENT+=(transformers)
elif pip_install "$TRANSFORMERS" && importable transformers; then
  INSTALLED+=(transformers); VERSION[transformers]=new
else
  WHY[transformers]="pip install $TRANSFORMERS failed"
fi

# --- mosaicml-streaming ----------------------------------------------------
install_streaming() {
  if ! is_ok torch; then WHY[streaming]="needs torch"; return 1; fi
  if ! is_ok transformers; then WHY[streaming]="needs transformers"; return 1; fi
  local pkgs=("$STREAMING")
  importable torchvision || pkgs+=("$TORCHVISION")
  if ! pip_install --no-deps "${pkgs[@]}"; then
    WHY[streaming]="pip install ${pkgs[*]} failed"; return 1
  fi
  if ! pip_install "${STREAMING_DEPS[@]}"; then
    WHY[streaming]="pip install ${STREAMING_DEPS[*]} failed"; return 1
  fi
  if ! "$PY" -c 'import streaming; from streaming import MDSWriter, StreamingDataset, LocalDataset' >>"$LOG" 2>&1; then
    WHY[streaming]="installed, but import streaming fails"; return 1
  fi
}
if is_ok streaming; then
  PRESENT+=(streaming)
elif install_streaming; then
  INSTALLED+=(streaming); VERSION[streaming]=new
fi

summary_and_exit
