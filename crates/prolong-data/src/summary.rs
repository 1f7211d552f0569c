//! What a dataset holds: samples, tokens and documents per domain.

use std::collections::BTreeMap;

use prolong_mds::{MdsDataset, MdsError, Value};
use serde::Serialize;

/// Counts of one domain (or of the whole dataset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub samples: u64,
    /// Document pieces: rows of `indices` in packed data, one per sample otherwise.
    pub documents: u64,
    pub tokens: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.samples += other.samples;
        self.documents += other.documents;
        self.tokens += other.tokens;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DatasetSummary {
    pub total: Counts,
    /// By the `domain` column; "" when the dataset has none.
    pub domains: BTreeMap<String, Counts>,
}

impl DatasetSummary {
    /// Reads every sample's `domain`, `length` (or the `input_ids` shape) and
    /// `indices` shape; token payloads are not touched. `progress` is called
    /// with the number of samples done.
    pub fn compute(
        dataset: &MdsDataset,
        mut progress: impl FnMut(usize),
    ) -> Result<DatasetSummary, MdsError> {
        let mut summary = DatasetSummary::default();
        for i in 0..dataset.len() {
            let sample = dataset.get(i)?;
            let domain = if sample.has("domain") {
                sample.str("domain")?
            } else {
                ""
            };
            let tokens = if sample.has("length") {
                sample.integer("length")? as u64
            } else if sample.has("input_ids") {
                sample.array("input_ids")?.len() as u64
            } else {
                0
            };
            let documents = if sample.has("indices") {
                match sample.get("indices")? {
                    Value::Array(a) => a.shape.first().copied().unwrap_or(0) as u64,
                    _ => 1,
                }
            } else {
                1
            };
            let counts = Counts {
                samples: 1,
                documents,
                tokens,
            };
            summary.total.add(&counts);
            summary
                .domains
                .entry(domain.to_string())
                .or_default()
                .add(&counts);
            if i % 4096 == 0 {
                progress(i);
            }
        }
        progress(dataset.len());
        Ok(summary)
    }
}
