//! A packed sequence's document boundaries, shared by the interop test and
//! examples/read_bench.rs (which includes this file by path), so that both write
//! ProLong-shaped `indices` the same way.

use prolong_rng::SplitMix64;

/// The `indices` of a sequence of `len` tokens cut into up to `docs` documents at
/// random places (a repeated cut merges two): flat (start, end) pairs that tile
/// 0..len, as ProLong's packer leaves them.
pub fn random_doc_indices(rng: &mut SplitMix64, docs: usize, len: u32) -> Vec<u32> {
    let mut cuts: Vec<u32> = (1..docs)
        .map(|_| 1 + rng.below(u64::from(len) - 1) as u32)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut bounds = vec![0u32];
    bounds.extend(cuts);
    bounds.push(len);
    bounds.windows(2).flat_map(|w| [w[0], w[1]]).collect()
}
