//! MDS v2 shards, byte-compatible with mosaicml-streaming.
