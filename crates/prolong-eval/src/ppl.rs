//! Loss and perplexity of a checkpoint on packed MDS sequences, by token position.
//!
//! Every label token (see [`PackedSequence`]: a token predicted from the tokens before it
//! in its document) counts at the position of the predicted token, in two ways:
//! * within its packed sequence (`0..seq_len`), and
//! * within its document (the document's first token is position 0, so the first
//!   predicted token is at 1).
//!
//! Positions are grouped in buckets `0–1K`, `1K–2K`, `2K–4K`, `4K–8K`, … (1K = 1,024; each
//! bucket after the first twice as wide as the one before), the last one ending at the
//! sequence length. Losses are summed in f64 in sequence order, so the same checkpoint and
//! data give byte-identical reports.

use prolong_packed::columns;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use prolong_mds::{MdsDataset, MdsError};
use prolong_plot::position::{Series, loss_by_position};
use prolong_train::data::{DataError, Mixture, MixtureLoader, Stream};
use prolong_train::{Llama, PackedSequence};
use serde::{Deserialize, Serialize};

/// Width of the first bucket; the next ones double.
pub const FIRST_BUCKET: usize = 1024;

/// Seed of the loader's sample order (fixed: every checkpoint sees the same sequences).
const ORDER_SEED: u64 = 0;

#[derive(Debug, thiserror::Error)]
pub enum PplError {
    #[error(transparent)]
    Model(#[from] prolong_train::Error),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Mds(#[from] MdsError),
    #[error("{path}: the dataset has no samples")]
    EmptyDataset { path: PathBuf },
    #[error("a sequence of {len} tokens does not fit the report's sequence length {seq_len}")]
    SequenceLength { len: usize, seq_len: usize },
}

/// The position buckets for sequences of `seq_len` tokens: `[0, 1024)`, then
/// `[1024·2^(i−1), 1024·2^i)`, the last one cut at `seq_len`.
pub fn bucket_edges(seq_len: usize) -> Vec<Range<usize>> {
    let mut edges = Vec::new();
    let mut start = 0;
    while start < seq_len {
        let end = if start == 0 { FIRST_BUCKET } else { 2 * start };
        edges.push(start..end.min(seq_len));
        start = end;
    }
    edges
}

/// Index of the bucket of `position` (as laid out by [`bucket_edges`]).
pub fn bucket_of(position: usize) -> usize {
    match position / FIRST_BUCKET {
        0 => 0,
        k => k.ilog2() as usize + 1,
    }
}

/// Label count and loss sum of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sum {
    tokens: u64,
    loss: f64,
}

/// Per-bucket sums of token losses over many packed sequences.
#[derive(Debug, Clone)]
pub struct PositionLosses {
    seq_len: usize,
    edges: Vec<Range<usize>>,
    sequence: Vec<Sum>,
    document: Vec<Sum>,
    total: Sum,
    sequences: usize,
}

impl PositionLosses {
    pub fn new(seq_len: usize) -> Self {
        let edges = bucket_edges(seq_len);
        let n = edges.len();
        Self {
            seq_len,
            edges,
            sequence: vec![Sum::default(); n],
            document: vec![Sum::default(); n],
            total: Sum::default(),
            sequences: 0,
        }
    }

    /// Adds the losses of one sequence: `(label position t, loss)` pairs as
    /// [`Llama::token_losses`] gives them (ascending `t`; the predicted token is `t + 1`).
    pub fn add(&mut self, seq: &PackedSequence, losses: &[(usize, f64)]) -> Result<(), PplError> {
        if seq.len() > self.seq_len {
            return Err(PplError::SequenceLength {
                len: seq.len(),
                seq_len: self.seq_len,
            });
        }
        let mut docs = seq.segments().iter().peekable();
        for &(t, loss) in losses {
            while docs.peek().is_some_and(|d| d.end <= t) {
                docs.next();
            }
            let doc_start = docs.peek().map_or(0, |d| d.start);
            let predicted = t + 1;
            for (sums, pos) in [
                (&mut self.sequence, predicted),
                (&mut self.document, predicted - doc_start),
            ] {
                let s = &mut sums[bucket_of(pos)];
                s.tokens += 1;
                s.loss += loss;
            }
            self.total.tokens += 1;
            self.total.loss += loss;
        }
        self.sequences += 1;
        Ok(())
    }

    /// The report of everything added so far.
    pub fn report(&self, model: &Path, data: &Path) -> PplReport {
        let buckets = |sums: &[Sum]| {
            self.edges
                .iter()
                .zip(sums)
                .map(|(r, s)| BucketReport {
                    start: r.start,
                    end: r.end,
                    tokens: s.tokens,
                    loss: mean(*s),
                    perplexity: mean(*s).map(f64::exp),
                })
                .collect()
        };
        PplReport {
            model: model.display().to_string(),
            data: data.display().to_string(),
            sequences: self.sequences,
            seq_len: self.seq_len,
            tokens: self.total.tokens,
            loss: mean(self.total),
            perplexity: mean(self.total).map(f64::exp),
            by_sequence_position: buckets(&self.sequence),
            by_document_position: buckets(&self.document),
        }
    }
}

fn mean(s: Sum) -> Option<f64> {
    (s.tokens > 0).then(|| s.loss / s.tokens as f64)
}

/// `ppl.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PplReport {
    /// The checkpoint and the dataset, as given.
    pub model: String,
    pub data: String,
    pub sequences: usize,
    pub seq_len: usize,
    /// Label tokens evaluated.
    pub tokens: u64,
    /// Token-mean loss (nats) and its exponential; `null` without label tokens.
    pub loss: Option<f64>,
    pub perplexity: Option<f64>,
    /// By the predicted token's position in its packed sequence.
    pub by_sequence_position: Vec<BucketReport>,
    /// By the predicted token's position in its document.
    pub by_document_position: Vec<BucketReport>,
}

/// One position bucket `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketReport {
    pub start: usize,
    pub end: usize,
    pub tokens: u64,
    pub loss: Option<f64>,
    pub perplexity: Option<f64>,
}

impl BucketReport {
    /// `0–1K`, `2K–4K`, `16K–20000`.
    pub fn label(&self) -> String {
        format!("{}–{}", short(self.start), short(self.end))
    }
}

/// `n` in K (1,024) when it is a whole number of them.
fn short(n: usize) -> String {
    if n > 0 && n.is_multiple_of(1024) {
        format!("{}K", n / 1024)
    } else {
        n.to_string()
    }
}

/// Evaluates `model` on the packed MDS dataset at `data`: `sequences` of its samples
/// (all when `None` or more than it holds), in the seeded order of the training loader.
/// `on_sequence(i, n, loss)` is called after each sequence (its token-mean loss, if any).
pub fn evaluate(
    model: &Llama,
    model_dir: &Path,
    data: &Path,
    sequences: Option<usize>,
    mut on_sequence: impl FnMut(usize, usize, Option<f64>),
) -> Result<PplReport, PplError> {
    let dataset = MdsDataset::open(data)?;
    if dataset.is_empty() {
        return Err(PplError::EmptyDataset { path: data.into() });
    }
    let seq_len = dataset.get(0)?.u32s(columns::INPUT_IDS)?.len();
    let n = sequences.map_or(dataset.len(), |s| s.min(dataset.len()));
    let mixture = Mixture {
        streams: vec![Stream {
            path: data.into(),
            proportion: 1.0,
        }],
    };
    let mut loader = MixtureLoader::new(&mixture, n as u64, seq_len, ORDER_SEED)?;
    let mut sums = PositionLosses::new(seq_len);
    let mut i = 0;
    while let Some(s) = loader.next_sequence()? {
        let seq = PackedSequence::new(s.input_ids, &s.indices, s.mask.as_deref())
            .map_err(prolong_train::Error::from)?;
        let losses = model.token_losses(&seq)?;
        sums.add(&seq, &losses)?;
        i += 1;
        let total: f64 = losses.iter().map(|&(_, l)| l).sum();
        on_sequence(
            i,
            n,
            (!losses.is_empty()).then(|| total / losses.len() as f64),
        );
    }
    Ok(sums.report(model_dir, data))
}

/// The terminal table: one row per bucket, by sequence and by document position.
pub fn table(r: &PplReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} sequences of {} tokens, {} label tokens: loss {}, perplexity {}",
        r.sequences,
        r.seq_len,
        r.tokens,
        num(r.loss, 4),
        num(r.perplexity, 2)
    );
    let _ = writeln!(
        s,
        "{:<14} {:>30}   {:>30}",
        "", "within sequence", "within document"
    );
    let _ = writeln!(
        s,
        "{:<14} {:>10} {:>8} {:>10}   {:>10} {:>8} {:>10}",
        "position", "tokens", "loss", "ppl", "tokens", "loss", "ppl"
    );
    for (a, b) in r.by_sequence_position.iter().zip(&r.by_document_position) {
        let _ = writeln!(
            s,
            "{:<14} {:>10} {:>8} {:>10}   {:>10} {:>8} {:>10}",
            a.label(),
            a.tokens,
            num(a.loss, 4),
            num(a.perplexity, 2),
            b.tokens,
            num(b.loss, 4),
            num(b.perplexity, 2)
        );
    }
    s
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// An SVG line chart of the loss per position bucket, within sequence and within
/// document ([`prolong_plot::position::loss_by_position`]). The buckets double in width,
/// so spacing them evenly makes the x axis a log₂ position axis. Empty buckets have no
/// point.
pub fn svg(r: &PplReport) -> String {
    let losses = |b: &[BucketReport]| b.iter().map(|b| b.loss).collect();
    let series = [
        Series {
            name: "within sequence",
            color: "#1f77b4",
            losses: losses(&r.by_sequence_position),
        },
        Series {
            name: "within document",
            color: "#d62728",
            losses: losses(&r.by_document_position),
        },
    ];
    let labels: Vec<String> = r.by_sequence_position.iter().map(|b| b.label()).collect();
    let title = format!("Loss by token position ({} tokens)", r.tokens);
    loss_by_position(&title, &labels, &series)
}

/// Writes `dir/ppl.json` and `dir/ppl.svg`, each under a temporary name then renamed.
pub fn write_report(r: &PplReport, dir: &Path) -> Result<(), PplError> {
    std::fs::create_dir_all(dir).map_err(|err| MdsError::Io {
        path: dir.into(),
        err,
    })?;
    let mut json = serde_json::to_string_pretty(r).expect("a report serializes");
    json.push('\n');
    prolong_mds::write_atomic(&dir.join("ppl.svg"), svg(r).as_bytes())?;
    prolong_mds::write_atomic(&dir.join("ppl.json"), json.as_bytes())?;
    Ok(())
}
