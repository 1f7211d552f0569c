#!/usr/bin/env bash
# The demo corpus on the fixtures (make fixtures): what the corpus stages that
# exist today make of real text, end to end, with the Llama-3 tokenizer.
#
#   long data:  books (the King James Bible, four Gutenberg texts) and code
#               repositories (crate sources from this project's Cargo.lock,
#               each made a git repository, plus this project's own repository)
#   short data: the Wikipedia excerpt (standing in for ShortMix's dolmawiki)
#
# Output under DATA (default data/):
#   repos/                       one JSONL.zst document per repository
#   tok/{book,code,wiki}/        tokenized MDS
#   packed/{book,code}-65536/    packed to 64K (stage 1)
#   packed/{book,code}-split/    cut into 64K and 512K chunks, packed to 512K (stage 2)
#   packed/wiki-65536/           packed to 64K
#   packed/*-4096/               packed to 4K, for the tiny CPU training stages
# Every dataset is checked with `prolong-data verify`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${1:-$ROOT/data}"
BIN="$ROOT/target/release/prolong-data"
CACHE="$ROOT/fixtures/cache"
TOKENIZER="$CACHE/tokenizer.json"
[ -x "$BIN" ] || { echo "demo-corpus: build first (cargo build --release)" >&2; exit 1; }
[ -f "$TOKENIZER" ] || { echo "demo-corpus: fixtures missing (make fixtures)" >&2; exit 1; }

# Code: the crates of Cargo.lock from cargo's download cache, each turned into
# a git repository (the repos stage reads HEAD through git2), and this project.
REPOS="$DATA/code-repos"
if [ ! -f "$REPOS/.done" ]; then
  rm -rf "$REPOS" && mkdir -p "$REPOS"
  (cd "$ROOT" && cargo fetch --locked -q)
  for crate in $(sed -n 's/^name = "\(.*\)"/\1/p;s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.lock" | paste - - | awk '{print $1"-"$2}' | sort -u); do
    archive=$(ls ~/.cargo/registry/cache/*/"$crate.crate" 2>/dev/null | head -1) || true
    [ -n "$archive" ] || continue
    tar -xzf "$archive" -C "$REPOS"
    (cd "$REPOS/$crate" && git init -q && git add -A . && \
      GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z \
      git -c user.name=demo -c user.email=demo@localhost commit -qm "$crate" --no-verify)
  done
  git clone -q --bare "$ROOT" "$REPOS/prolong-rs.git"
  touch "$REPOS/.done"
fi

step() { echo "== $*"; }
step "repos → documents"
"$BIN" repos "$REPOS" --out "$DATA/repos" --dedup-files >/dev/null
step "tokenize"
"$BIN" tokenize "$CACHE/kjv.txt" "$CACHE/gutenberg" --out "$DATA/tok/book" --domain book --tokenizer "$TOKENIZER" >/dev/null
"$BIN" tokenize "$DATA/repos" --out "$DATA/tok/code" --domain thestackv1_concat_by_repo --tokenizer "$TOKENIZER" >/dev/null
"$BIN" tokenize "$CACHE/enwiki.xml" --out "$DATA/tok/wiki" --domain dolmawiki --tokenizer "$TOKENIZER" >/dev/null
step "pack"
for src in book code; do
  "$BIN" pack "$DATA/tok/$src" --out "$DATA/packed/$src-65536" --len 65536 >/dev/null
  "$BIN" pack "$DATA/tok/$src" --out "$DATA/packed/$src-split" --len 524288 --split-by-lengths 65536,524288 >/dev/null
  "$BIN" pack "$DATA/tok/$src" --out "$DATA/packed/$src-4096" --len 4096 >/dev/null
done
"$BIN" pack "$DATA/tok/wiki" --out "$DATA/packed/wiki-65536" --len 65536 >/dev/null
"$BIN" pack "$DATA/tok/wiki" --out "$DATA/packed/wiki-4096" --len 4096 >/dev/null
step "verify"
for d in "$DATA"/tok/* "$DATA"/packed/*; do
  "$BIN" verify "$d"
done
step "summary"
for d in "$DATA"/packed/*; do
  echo "-- $d"
  "$BIN" inspect "$d" | sed -n '3,5p'
done
