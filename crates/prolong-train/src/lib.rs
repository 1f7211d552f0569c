//! Llama continual pre-training on packed MDS shards.
