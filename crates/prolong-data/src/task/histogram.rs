//! Document lengths in power-of-two buckets, summed across tasks.

use serde::{Deserialize, Serialize};

/// Documents by length in power-of-two buckets [2^k, 2^(k+1)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthHistogram {
    pub buckets: Vec<LengthBucket>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LengthBucket {
    /// Lengths in [min, max].
    pub min: u64,
    pub max: u64,
    pub documents: u64,
    pub tokens: u64,
}

impl LengthHistogram {
    pub fn add(&mut self, length: u64) {
        let (min, max) = match length {
            0 => (0, 0),
            n => {
                let k = 63 - n.leading_zeros();
                (1u64 << k, (1u64 << k).saturating_mul(2) - 1)
            }
        };
        let bucket = self.bucket(min, max);
        bucket.documents += 1;
        bucket.tokens += length;
    }

    pub fn merge(&mut self, other: &LengthHistogram) {
        for b in &other.buckets {
            let bucket = self.bucket(b.min, b.max);
            bucket.documents += b.documents;
            bucket.tokens += b.tokens;
        }
    }

    /// The bucket `[min, max]`, inserted empty in order if missing.
    fn bucket(&mut self, min: u64, max: u64) -> &mut LengthBucket {
        let at = self.buckets.partition_point(|b| b.min < min);
        if self.buckets.get(at).is_none_or(|b| b.min != min) {
            self.buckets.insert(
                at,
                LengthBucket {
                    min,
                    max,
                    ..Default::default()
                },
            );
        }
        &mut self.buckets[at]
    }
}
