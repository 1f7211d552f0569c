//! MixtureLoader over small MDS datasets in ProLong's layouts: allocation,
//! ordering, resumption, epochs, mixture parsing and errors.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use prolong_mds::{Array, MdsWriter, Scalar, Value, WriterOptions, merge_index};
use prolong_train::data::{
    DataError, LoadedSequence, LoaderState, Mixture, MixtureLoader, Stream, allocate,
};

mod setup;
mod streams;

const SEQ: usize = 8;

#[derive(Clone, Copy)]
enum Length {
    Int,
    U64,
    Absent,
}

#[derive(Clone, Copy)]
struct Layout {
    length: Length,
    indices: bool,
    /// Mask column encoding, if any ("ndarray:uint8", "ndarray:uint32").
    mask: Option<&'static str>,
}

const PLAIN: Layout = Layout {
    length: Length::Int,
    indices: true,
    mask: None,
};

/// Tokens of sample `i` of the dataset tagged `tag`: the first token identifies it.
fn tokens(tag: u32, i: usize, seq_len: usize) -> Vec<u32> {
    let mut ids = vec![tag * 1000 + i as u32];
    ids.extend((1..seq_len).map(|t| t as u32));
    ids
}

fn pieces(i: usize, seq_len: usize) -> Vec<[usize; 2]> {
    let cut = 1 + i % (seq_len - 1);
    vec![[0, cut], [cut, seq_len]]
}

fn mask_of(i: usize, seq_len: usize) -> Vec<u8> {
    (0..seq_len).map(|t| ((t + i) % 2) as u8).collect()
}

/// Writes `n` samples (ProLong's packed columns) into `dir`, with sample
/// numbers starting at `first`.
fn write_samples(dir: &Path, tag: u32, first: usize, n: usize, seq_len: usize, layout: Layout) {
    let mut columns = vec![("domain", "str"), ("input_ids", "ndarray:uint32")];
    if layout.indices {
        columns.push(("indices", "ndarray:uint32"));
    }
    match layout.length {
        Length::Int => columns.push(("length", "int")),
        Length::U64 => columns.push(("length", "uint64")),
        Length::Absent => {}
    }
    if let Some(enc) = layout.mask {
        columns.push(("mask", enc));
    }
    let mut w = MdsWriter::create(dir, &columns, WriterOptions::default()).unwrap();
    for i in first..first + n {
        let ids = tokens(tag, i, seq_len);
        let flat: Vec<u32> = pieces(i, seq_len)
            .iter()
            .flat_map(|p| [p[0] as u32, p[1] as u32])
            .collect();
        let mask8 = mask_of(i, seq_len);
        let mask32: Vec<u32> = mask8.iter().map(|&m| m as u32).collect();
        let mut sample = vec![
            ("domain", Value::Str(Cow::Borrowed("test"))),
            ("input_ids", Value::Array(Array::from_u32(&ids))),
        ];
        if layout.indices {
            sample.push((
                "indices",
                Value::Array(Array::from_u32(&flat).with_shape(vec![flat.len() / 2, 2])),
            ));
        }
        match layout.length {
            Length::Int => sample.push(("length", Value::Int(seq_len as i64))),
            Length::U64 => sample.push(("length", Value::Scalar(Scalar::U64(seq_len as u64)))),
            Length::Absent => {}
        }
        match layout.mask {
            Some("ndarray:uint8") => sample.push(("mask", Value::Array(Array::from_u8(&mask8)))),
            Some(_) => sample.push(("mask", Value::Array(Array::from_u32(&mask32)))),
            None => {}
        }
        w.write(&sample).unwrap();
    }
    w.finish().unwrap();
}

fn dataset(dir: &Path, tag: u32, n: usize, layout: Layout) -> PathBuf {
    write_samples(dir, tag, 0, n, SEQ, layout);
    dir.to_path_buf()
}

/// A merged root: two `procNN-64/` sub-folders and a root index.json.
fn merged_dataset(root: &Path, tag: u32, n0: usize, n1: usize, layout: Layout) -> PathBuf {
    write_samples(&root.join("proc00-64"), tag, 0, n0, SEQ, layout);
    write_samples(&root.join("proc01-64"), tag, n0, n1, SEQ, layout);
    merge_index(root).unwrap();
    root.to_path_buf()
}

/// Three streams in ProLong's layouts: plain (length int); SFT-like with a uint8
/// mask and length uint64; a merged root without length nor indices.
fn three_streams(tmp: &Path, sizes: [usize; 3]) -> Vec<PathBuf> {
    vec![
        dataset(&tmp.join("code"), 1, sizes[0], PLAIN),
        dataset(
            &tmp.join("sft"),
            2,
            sizes[1],
            Layout {
                length: Length::U64,
                indices: true,
                mask: Some("ndarray:uint8"),
            },
        ),
        merged_dataset(
            &tmp.join("books"),
            3,
            sizes[2] / 2,
            sizes[2] - sizes[2] / 2,
            Layout {
                length: Length::Absent,
                indices: false,
                mask: None,
            },
        ),
    ]
}

/// A temporary folder holding [`three_streams`] of `sizes`, and their mixture in
/// `proportions` (the streams live as long as the returned folder).
fn three_stream_mixture(sizes: [usize; 3], proportions: &[f64]) -> (tempfile::TempDir, Mixture) {
    let tmp = tempfile::tempdir().unwrap();
    let mix = mixture(&three_streams(tmp.path(), sizes), proportions);
    (tmp, mix)
}

fn mixture(paths: &[PathBuf], proportions: &[f64]) -> Mixture {
    Mixture {
        streams: paths
            .iter()
            .zip(proportions)
            .map(|(p, &proportion)| Stream {
                path: p.clone(),
                proportion,
            })
            .collect(),
    }
}

fn drain(loader: &mut MixtureLoader) -> Vec<LoadedSequence> {
    let mut out = Vec::new();
    while let Some(s) = loader.next_sequence().unwrap() {
        out.push(s);
    }
    out
}

/// (stream, sample number) of each sequence.
fn ids(seqs: &[LoadedSequence]) -> Vec<(usize, u32)> {
    seqs.iter()
        .map(|s| (s.stream, s.input_ids[0] % 1000))
        .collect()
}
