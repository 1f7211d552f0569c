#!/usr/bin/env bash
# The demo corpus on the fixtures (make fixtures): what the corpus stages make
# of real text, end to end, with the Llama-3 tokenizer. This script prepares
# the code repositories (shell: crates extracted from cargo's cache, each made
# a git repository), then runs the recipe pipelines/corpus.toml
# (`prolong-data run`: repos, tokenize, ShortMix sample, pack, mix; steps whose
# outputs are complete are skipped) and verifies every dataset.
#
#   long data:  books (the King James Bible, four Gutenberg texts) and code
#               repositories (crate sources from this project's Cargo.lock,
#               each made a git repository, plus this project's own repository)
#   short data: the Wikipedia excerpt (standing in for all seven ShortMix sources)
#
# Output under DATA (default data/): see pipelines/corpus.toml — tok/, shortmix/,
# packed/ (64K, 512K split by lengths, 4K for the tiny CPU stages) and
# mix/stage1-64k.toml, mix/stage2-512k.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${1:-$ROOT/data}"
mkdir -p "$DATA" && DATA="$(cd "$DATA" && pwd)"
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

DATA="$DATA" "$BIN" run "$ROOT/pipelines/corpus.toml"

echo "== verify"
for d in "$DATA"/tok/* "$DATA"/shortmix/*/ "$DATA"/packed/*; do
  "$BIN" verify "${d%/}"
done
echo "== summary"
for d in "$DATA"/packed/*; do
  echo "-- $d"
  "$BIN" inspect "$d" | sed -n '3,5p'
done
for m in "$DATA"/mix/*.toml; do
  echo "-- $m"
  grep -E '^(sequence_length|total_samples|name|proportion|samples) =' "$m"
done
