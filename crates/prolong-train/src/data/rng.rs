//! The loader's seeded generator and shuffles: the one SplitMix64 of the workspace
//! (`prolong-rng`). Its output is part of the data order: changing it changes which
//! sequences a seed yields.

pub use prolong_rng::{SplitMix64, derive_seed, mix64};
