//! SplitMix64 (Steele, Lea, Flood 2014), the one seeded generator of the ProLong tools:
//! the training loader's data order, random model initialisation, sampling and
//! synthetic data. A small, fixed, documented generator, so that a seed means the same
//! draws in every version and on every machine (no dependency whose stream could
//! change): changing anything here changes which sequences a seed yields.

use serde::{Deserialize, Serialize};

/// The SplitMix64 stream of one seed: a 64-bit state advanced by a constant, its output
/// the state through a bijective mixer. Serialises as `{"state": N}` (trainer
/// checkpoints keep the initialisation generator's state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    pub state: u64,
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output mixer (a bijection of u64).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Derives an independent seed from `seed` and a list of keys (a purpose tag,
/// a stream index, an epoch, ...).
pub fn derive_seed(seed: u64, keys: &[u64]) -> u64 {
    keys.iter().fold(mix64(seed), |acc, &k| {
        mix64(acc ^ mix64(k.wrapping_add(GAMMA)))
    })
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `[0, n)` (`n > 0`), without modulo bias (Lemire's
    /// multiply-and-reject).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Uniform in (0, 1], 53 bits.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outputs_match_the_published_generator() {
        // The reference implementation's outputs for seeds 1234567 and 0.
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn below_and_between_stay_in_range_and_shuffle_permutes() {
        let mut r = SplitMix64::new(7);
        for n in 1..50 {
            assert!(r.below(n) < n);
        }
        let mut seen = [false; 5];
        for _ in 0..200 {
            let v = r.between(3, 7);
            assert!((3..=7).contains(&v));
            seen[v - 3] = true;
        }
        assert!(seen.iter().all(|&s| s));
        let mut v: Vec<u32> = (0..100).collect();
        r.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(v, s);
    }

    #[test]
    fn the_state_serialises_as_trainer_checkpoints_keep_it() {
        let r = SplitMix64::new(42);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"state":42}"#);
    }
}
