# ProLong in Rust. `make demo` runs the main job on the bundled fixtures;
# `make test` runs every test (what CI runs). See README.md.

SHELL := bash
CARGO ?= cargo
RELEASE := target/release
DATA ?= data

.PHONY: all build fixtures peers corpus train eval demo test bench fmt lint clean-data

all: build

# With Open MPI present (scripts/install-mpi.sh), the binaries train on MPI ranks too.
build:
	$(CARGO) build --release --workspace $$(bash scripts/install-mpi.sh --features)

# Real text for the demo and end-to-end tests, pinned by sha256, into fixtures/cache/.
fixtures:
	bash scripts/fetch-fixtures.sh

# Python peer tools (mosaicml-streaming, tiktoken, torch, transformers) for the
# optional interop tests and benchmarks. Never fails; says what will be skipped.
peers:
	bash scripts/install-python-peers.sh

# The default corpus recipe (pipelines/corpus.toml, run by prolong-data run) on
# the fixtures: tokenized, packed 64K/512K/4K datasets and the mixture manifests
# mix/stage1-64k.toml and mix/stage2-512k.toml under $(DATA)/; every dataset verified.
corpus: build fixtures
	bash scripts/demo-corpus.sh $(DATA)

# The tiny model through both tiny stages and the tiny SFT stage on the output of `make corpus`.
# The malloc settings keep the large logits blocks from being page-faulted
# afresh on every block (about 1.5x faster on glibc).
TRAIN_ENV := GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=8589934592
train: build
	$(TRAIN_ENV) $(RELEASE)/prolong-train train --config pipelines/tiny-stage1.toml
	$(TRAIN_ENV) $(RELEASE)/prolong-train train --config pipelines/tiny-stage2.toml
	$(TRAIN_ENV) $(RELEASE)/prolong-train train --config pipelines/tiny-sft.toml

# Perplexity by position and synthetic recall (short lengths) of the model `make train`
# ends with, into runs/eval/. EVAL_MODEL, EVAL_SAMPLES and EVAL_LENGTHS override.
EVAL_MODEL ?= runs/tiny-sft/final
EVAL_SAMPLES ?= 10
EVAL_LENGTHS ?= 1024,2048,4096
eval: build
	$(TRAIN_ENV) $(RELEASE)/prolong-eval ppl --model $(EVAL_MODEL) --data $(DATA)/packed/book-4096 \
	    --sequences 8 --out runs/eval/ppl
	$(TRAIN_ENV) $(RELEASE)/prolong-eval recall --model $(EVAL_MODEL) \
	    --tokenizer fixtures/cache/tokenizer.json --haystack fixtures/cache/kjv.txt \
	    --lengths $(EVAL_LENGTHS) --samples $(EVAL_SAMPLES) --out runs/eval/recall \
	    --save-instances runs/eval/recall/instances.jsonl

# The main job on the bundled default: fixtures, corpus, tiny model.
demo: fixtures corpus train

# Every test. Installs what the tests need first: the fixtures (end-to-end
# tests skip, saying so, if a registry is unreachable) and the Python peers.
# scripts/cuda-check.sh compiles our CUDA kernels with NVIDIA's nvcc wheels (or says
# it skipped); CUDA_CHECK=full builds the whole `cuda` feature (~45 min cold).
# scripts/install-mpi.sh installs Open MPI for the `mpi` feature (CPU ranks): the
# distributed tests run on MPI ranks when it is there, and are left out when not.
# scripts/slurm-up.sh installs Debian's Slurm; the Slurm test starts a one-node Slurm with it.
# The API docs must build without a warning (a broken or private link fails it).
test:
	bash scripts/fetch-fixtures.sh || echo "fixtures unavailable: end-to-end tests will skip"
	bash scripts/install-python-peers.sh
	bash scripts/install-mpi.sh
	bash scripts/slurm-up.sh --install || echo "no Slurm: the Slurm test will skip"
	bash scripts/cuda-check.sh
	$(CARGO) fmt --all --check
	features="$$(bash scripts/install-mpi.sh --features)"; \
	$(CARGO) clippy --workspace --all-targets $$features -- -D warnings && \
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace $$features && \
	$(CARGO) test --workspace $$features

bench: fixtures
	bash scripts/bench.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

clean-data:
	rm -rf $(DATA) bench-data runs
