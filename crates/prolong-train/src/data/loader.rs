//! [`MixtureLoader`]: a stage's sequences drawn from a [`Mixture`] of MDS
//! streams in a seeded, resumable order.

use std::path::{Path, PathBuf};

use prolong_mds::{MdsDataset, MdsError, Sample};
use prolong_packed::columns::{INDICES, INPUT_IDS, MASK};
use prolong_packed::sample::{read_indices, read_mask};
use serde::{Deserialize, Serialize};

use super::error::DataError;
use super::mixture::{Mixture, allocate};
use super::rng::{SplitMix64, derive_seed};

// Purpose tags of the seeds derived from the loader's seed (1: the allocation, mixture.rs).
const TAG_ORDER: u64 = 2;
const TAG_PERMUTATION: u64 = 3;
const TAG_HOLD_OUT: u64 = 4;

/// One packed sequence as the trainer consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSequence {
    /// Which stream of the mixture it came from (index into `Mixture::streams`).
    pub stream: usize,
    /// Exactly `seq_len` tokens.
    pub input_ids: Vec<u32>,
    /// Document pieces `[start, end)`, sorted and disjoint, within `[0, seq_len]`;
    /// `[[0, seq_len]]` when the dataset has no `indices` column.
    pub indices: Vec<[usize; 2]>,
    /// One 0/1 byte per token when the dataset has a `mask` column (SFT data) and the
    /// loader applies it ([`MixtureLoader::apply_mask`]).
    pub mask: Option<Vec<u8>>,
}

/// What [`MixtureLoader::restore`] needs to continue where a loader was: the
/// seed, the position and the allocation (plus the sizes of the streams, to
/// notice a changed dataset). Permutations are recomputed from the seed, so the
/// state stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    pub seed: u64,
    pub total_sequences: u64,
    /// Sequences handed out so far.
    pub position: u64,
    /// Sequences per stream over the whole stage.
    pub allocation: Vec<u64>,
    /// Samples in each stream's dataset.
    pub stream_samples: Vec<u64>,
}

pub(super) struct LoadedStream {
    path: PathBuf,
    dataset: MdsDataset,
    len: usize,
    /// Sequences drawn from this stream so far.
    pub(super) cursor: u64,
    /// The sample order of epoch `perm_epoch`.
    perm: Vec<usize>,
    perm_epoch: Option<u64>,
    /// Samples never handed out (held out for evaluation), sorted.
    held_out: Vec<usize>,
}

impl LoadedStream {
    /// Samples the loader hands out.
    fn trainable(&self) -> usize {
        self.len - self.held_out.len()
    }
}

/// Hands out a stage's `total_sequences` sequences from a mixture.
///
/// * Allocation: [`allocate`] over the normalised proportions.
/// * Within a stream, samples come in a seeded random permutation; a stream that
///   must give more sequences than it holds continues with a fresh permutation
///   (the next epoch).
/// * Globally, the order of streams is a seeded shuffle of the multiset
///   `{j × allocation[j]}`.
///
/// Everything derives from `seed`: the same mixture, total and seed always give
/// the same sequences in the same order. [`state`](Self::state) /
/// [`restore`](Self::restore) resume exactly. Memory: 4 bytes per sequence of the
/// stage for the order, and one permutation per stream in use.
///
/// Every sample is checked as it is read: `input_ids` (uint32) of exactly
/// `seq_len` tokens; `indices` (optional, any integer dtype, shape (n, 2)) sorted
/// disjoint pieces within the sequence; `mask` (optional, any integer dtype) one
/// 0/1 value per token, read only when the loader applies it (on by default; a stage
/// sets it from `[data] apply_mask`). `length` and other columns are not read.
pub struct MixtureLoader {
    pub(super) streams: Vec<LoadedStream>,
    seq_len: usize,
    apply_mask: bool,
    seed: u64,
    pub(super) total: u64,
    allocation: Vec<u64>,
    /// Stream of each global position.
    pub(super) order: Vec<u32>,
    pub(super) position: u64,
    /// Samples read (decoded) so far by this loader; see `data/part.rs`.
    pub(super) reads: u64,
}

impl MixtureLoader {
    /// Validates the mixture, opens every stream, checks the first sample of
    /// each against `seq_len`, and lays out the order of the stage.
    pub fn new(
        mixture: &Mixture,
        total_sequences: u64,
        seq_len: usize,
        seed: u64,
    ) -> Result<MixtureLoader, DataError> {
        mixture.validate()?;
        let proportions = mixture.normalized_proportions()?;
        let allocation = allocate(&proportions, total_sequences, seed);

        let mut streams = Vec::with_capacity(mixture.streams.len());
        for (j, s) in mixture.streams.iter().enumerate() {
            let dataset = MdsDataset::open(&s.path).map_err(|e| DataError::NotMds {
                path: s.path.clone(),
                reason: e.to_string(),
            })?;
            let stream = LoadedStream {
                path: s.path.clone(),
                len: dataset.len(),
                dataset,
                cursor: 0,
                perm: Vec::new(),
                perm_epoch: None,
                held_out: Vec::new(),
            };
            if stream.len == 0 {
                if allocation[j] > 0 {
                    return Err(DataError::EmptyStream {
                        path: s.path.clone(),
                        needed: allocation[j],
                    });
                }
            } else {
                read_sequence(&stream, j, 0, seq_len, true)?;
            }
            streams.push(stream);
        }

        let mut order = Vec::with_capacity(total_sequences as usize);
        for (j, &n) in allocation.iter().enumerate() {
            order.extend(std::iter::repeat_n(j as u32, n as usize));
        }
        SplitMix64::new(derive_seed(seed, &[TAG_ORDER])).shuffle(&mut order);

        Ok(MixtureLoader {
            streams,
            seq_len,
            apply_mask: true,
            seed,
            total: total_sequences,
            allocation,
            order,
            position: 0,
            reads: 0,
        })
    }

    /// Whether sequences carry their dataset's `mask` column (`false`: the column is not
    /// read, every token is a label as in pre-training). ProLong reads it only with
    /// `--apply_instruct_masks`, which only its SFT script passes; its released 64K/512K
    /// mixtures carry `mask` in the Tulu folder, which pre-training must ignore.
    pub fn apply_mask(mut self, on: bool) -> Self {
        self.apply_mask = on;
        self
    }

    /// The next sequence, or `None` once `total_sequences` have been handed out.
    /// On error the position does not advance.
    pub fn next_sequence(&mut self) -> Result<Option<LoadedSequence>, DataError> {
        if self.position >= self.total {
            return Ok(None);
        }
        let j = self.order[self.position as usize] as usize;
        let seed = self.seed;
        let stream = &mut self.streams[j];
        let len = stream.trainable() as u64;
        let epoch = stream.cursor / len;
        if stream.perm_epoch != Some(epoch) {
            stream.perm.clear();
            let held_out = &stream.held_out;
            stream
                .perm
                .extend((0..stream.len).filter(|i| held_out.binary_search(i).is_err()));
            let key = derive_seed(seed, &[TAG_PERMUTATION, j as u64, epoch]);
            SplitMix64::new(key).shuffle(&mut stream.perm);
            stream.perm_epoch = Some(epoch);
        }
        let sample = stream.perm[(stream.cursor % len) as usize];
        let sequence = read_sequence(stream, j, sample, self.seq_len, self.apply_mask)?;
        stream.cursor += 1;
        self.position += 1;
        self.reads += 1;
        Ok(Some(sequence))
    }

    /// Holds out `per_stream[j]` samples of each stream `j`, chosen by a shuffle seeded
    /// with `seed` (independent of the data order's seed, so stages that share streams
    /// and this seed hold out the same samples). They are never handed out by
    /// [`next_sequence`](Self::next_sequence); read them with [`read`](Self::read).
    /// Returns them as `(stream, sample)`, stream by stream. Call it before the first
    /// sequence (and before [`restore`](Self::restore)); a stream that would keep no
    /// sample while the stage draws from it is an error.
    pub fn hold_out(
        &mut self,
        per_stream: &[u64],
        seed: u64,
    ) -> Result<Vec<(usize, usize)>, DataError> {
        let mut out = Vec::new();
        for (j, stream) in self.streams.iter_mut().enumerate() {
            let n = per_stream.get(j).copied().unwrap_or(0) as usize;
            let drawn = self.allocation[j] > 0;
            if n > stream.len || (drawn && n == stream.len) {
                return Err(DataError::HoldOut {
                    path: stream.path.clone(),
                    samples: stream.len,
                    held_out: n,
                });
            }
            let mut all: Vec<usize> = (0..stream.len).collect();
            SplitMix64::new(derive_seed(seed, &[TAG_HOLD_OUT, j as u64])).shuffle(&mut all);
            all.truncate(n);
            out.extend(all.iter().map(|&s| (j, s)));
            all.sort_unstable();
            stream.held_out = all;
            stream.perm_epoch = None;
        }
        Ok(out)
    }

    /// Reads sample `sample` of stream `j` (checked like every handed-out sequence),
    /// without moving the loader.
    pub fn read(&self, j: usize, sample: usize) -> Result<LoadedSequence, DataError> {
        read_sequence(&self.streams[j], j, sample, self.seq_len, self.apply_mask)
    }

    /// Sequences handed out so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Sequences per stream over the whole stage (sums to `total_sequences`).
    pub fn allocation(&self) -> &[u64] {
        &self.allocation
    }

    pub fn total_sequences(&self) -> u64 {
        self.total
    }

    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The dataset folder of stream `j`.
    pub fn stream_path(&self, j: usize) -> &Path {
        &self.streams[j].path
    }

    /// Samples in stream `j`'s dataset.
    pub fn stream_samples(&self, j: usize) -> usize {
        self.streams[j].len
    }

    /// The state to save with a checkpoint.
    pub fn state(&self) -> LoaderState {
        LoaderState {
            seed: self.seed,
            total_sequences: self.total,
            position: self.position,
            allocation: self.allocation.clone(),
            stream_samples: self.streams.iter().map(|s| s.len as u64).collect(),
        }
    }

    /// Continues exactly where the loader that saved `state` was. The loader
    /// must have been built from the same mixture (same streams, same dataset
    /// sizes), total and seed; anything else is an error and leaves the loader
    /// unchanged.
    pub fn restore(&mut self, state: &LoaderState) -> Result<(), DataError> {
        let mismatch = |what: &str, saved: String, here: String| {
            Err(DataError::State(format!(
                "the state has {what} {saved}, this loader {here}"
            )))
        };
        if state.seed != self.seed {
            return mismatch("seed", state.seed.to_string(), self.seed.to_string());
        }
        if state.total_sequences != self.total {
            return mismatch(
                "total_sequences",
                state.total_sequences.to_string(),
                self.total.to_string(),
            );
        }
        let samples: Vec<u64> = self.streams.iter().map(|s| s.len as u64).collect();
        if state.stream_samples != samples {
            return mismatch(
                "stream sizes",
                format!("{:?}", state.stream_samples),
                format!("{samples:?} (streams: {})", self.stream_list()),
            );
        }
        if state.allocation != self.allocation {
            return mismatch(
                "allocation",
                format!("{:?}", state.allocation),
                format!("{:?} (streams: {})", self.allocation, self.stream_list()),
            );
        }
        if state.position > self.total {
            return Err(DataError::State(format!(
                "position {} is past the {} sequences of the stage",
                state.position, self.total
            )));
        }
        for s in &mut self.streams {
            s.cursor = 0;
        }
        for &j in &self.order[..state.position as usize] {
            self.streams[j as usize].cursor += 1;
        }
        self.position = state.position;
        Ok(())
    }

    fn stream_list(&self) -> String {
        self.streams
            .iter()
            .map(|s| s.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads and checks sample `sample` of `stream`.
fn read_sequence(
    stream: &LoadedStream,
    j: usize,
    sample: usize,
    seq_len: usize,
    apply_mask: bool,
) -> Result<LoadedSequence, DataError> {
    let path = &stream.path;
    let mds = |source: MdsError| DataError::Mds {
        path: path.clone(),
        err: source,
    };
    let bad = |reason: String| DataError::BadSample {
        path: path.clone(),
        sample,
        reason,
    };
    let s: Sample<'_> = stream.dataset.get(sample).map_err(mds)?;
    if !s.has(INPUT_IDS) {
        return Err(bad("the dataset has no input_ids column".into()));
    }
    let input_ids = s.u32s(INPUT_IDS).map_err(mds)?;
    if input_ids.len() != seq_len {
        return Err(DataError::SequenceLength {
            path: path.clone(),
            sample,
            len: input_ids.len(),
            expected: seq_len,
        });
    }
    let input_ids = input_ids.into_owned();

    let indices = if s.has(INDICES) {
        let a = s.array(INDICES).map_err(mds)?;
        read_indices(&a, seq_len).map_err(bad)?
    } else {
        vec![[0, seq_len]]
    };
    let mask = if apply_mask && s.has(MASK) {
        let a = s.array(MASK).map_err(mds)?;
        Some(read_mask(&a, seq_len).map_err(bad)?)
    } else {
        None
    };
    Ok(LoadedSequence {
        stream: j,
        input_ids,
        indices,
        mask,
    })
}
