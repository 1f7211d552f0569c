//! What a dataset holds: samples, tokens and documents per domain.

use prolong_packed::columns;
use std::collections::BTreeMap;

use prolong_mds::{Dtype, Encoding, MdsDataset, MdsError, Value};
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

/// The columns inspect and stats interpret, checked in every shard against
/// the encodings they are read as: a column of another encoding is one error
/// naming index.json, not values misread or silently counted as something
/// else.
pub fn check_columns(dataset: &MdsDataset) -> Result<(), MdsError> {
    for (i, shard) in dataset.index().shards.iter().enumerate() {
        for (name, enc) in shard.column_names.iter().zip(&shard.column_encodings) {
            let encoding = Encoding::parse(enc);
            let (ok, expected) = match (name.as_str(), &encoding) {
                ("domain", e) => (matches!(e, Some(Encoding::Str)), "str"),
                ("length", e) => (
                    matches!(e, Some(Encoding::Int))
                        || matches!(e, Some(Encoding::Scalar(d)) if d.name().contains("int")),
                    "an integer",
                ),
                ("input_ids" | "indices", e) => (
                    matches!(
                        e,
                        Some(Encoding::NdArray {
                            dtype: None | Some(Dtype::U32),
                            ..
                        })
                    ),
                    "ndarray:uint32",
                ),
                _ => (true, ""),
            };
            if !ok {
                return Err(MdsError::BadIndex {
                    path: dataset.dir().join(prolong_mds::INDEX_FILE),
                    reason: format!("shard {i}: column {name:?} is {enc}, expected {expected}"),
                });
            }
        }
    }
    Ok(())
}

impl DatasetSummary {
    /// Reads every sample's `domain`, `length` (or the `input_ids` shape) and
    /// `indices` shape; token payloads are not touched. `progress` is called
    /// with the number of samples done.
    pub fn compute(
        dataset: &mut MdsDataset,
        mut progress: impl FnMut(usize),
    ) -> Result<DatasetSummary, MdsError> {
        check_columns(dataset)?;
        let mut summary = DatasetSummary::default();
        let mut done = 0;
        for shard in 0..dataset.num_shards() {
            let samples = dataset.index().shards[shard].samples as usize;
            for local in 0..samples {
                let sample = dataset.get_in_shard(shard, local)?;
                summary.add(&sample)?;
                done += 1;
                if done % 4096 == 0 {
                    progress(done);
                }
            }
            // One shard held at a time, whatever the dataset's size.
            dataset.release_shard(shard);
        }
        progress(dataset.len());
        Ok(summary)
    }

    fn add(&mut self, sample: &prolong_mds::Sample<'_>) -> Result<(), MdsError> {
        let domain = if sample.has(columns::DOMAIN) {
            sample.str(columns::DOMAIN)?
        } else {
            ""
        };
        let tokens = if sample.has(columns::LENGTH) {
            sample_length(sample)?
        } else if sample.has(columns::INPUT_IDS) {
            sample.array(columns::INPUT_IDS)?.len() as u64
        } else {
            0
        };
        let documents = if sample.has(columns::INDICES) {
            match sample.get(columns::INDICES)? {
                Value::Array(a) => a.shape.first().copied().unwrap_or(0) as u64,
                other => {
                    return Err(MdsError::BadValue {
                        column: columns::INDICES.into(),
                        reason: format!("not an ndarray: {other:?}"),
                    });
                }
            }
        } else {
            1
        };
        let counts = Counts {
            samples: 1,
            documents,
            tokens,
        };
        self.total.add(&counts);
        self.domains
            .entry(domain.to_string())
            .or_default()
            .add(&counts);
        Ok(())
    }
}

/// A sample's `length` column, refused when negative (it would wrap).
pub fn sample_length(sample: &prolong_mds::Sample<'_>) -> Result<u64, MdsError> {
    let length = sample.integer(columns::LENGTH)?;
    u64::try_from(length).map_err(|_| MdsError::BadValue {
        column: columns::LENGTH.into(),
        reason: format!("{length} is not a length"),
    })
}
