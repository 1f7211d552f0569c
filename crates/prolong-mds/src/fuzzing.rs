//! The entry point of the shard-decoder fuzz target (fuzz/), shared with the
//! test that replays its corpus under `cargo test`.

use crate::encoding::Encoding;
use crate::index::Column;
use crate::shard::decode_shard;

/// The column sets the fuzzer picks from with the input's first byte:
/// ProLong's packed layout, the SFT layout with a mask, and one column of
/// every encoding.
const COLUMN_SETS: [&[(&str, &str)]; 3] = [
    &[
        ("domain", "str"),
        ("indices", "ndarray:uint32"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
    ],
    &[
        ("domain", "str"),
        ("indices", "ndarray:uint32"),
        ("input_ids", "ndarray:uint32"),
        ("length", "int"),
        ("mask", "ndarray:uint8"),
    ],
    &[
        ("b", "bytes"),
        ("dyn", "ndarray"),
        ("f32", "float32"),
        ("fixed", "ndarray:int32:4"),
        ("i", "int"),
        ("i32", "int32"),
        ("j", "json"),
        ("s", "str"),
        ("u16arr", "ndarray:uint16"),
        ("u64", "uint64"),
    ],
];

/// Decodes `input[1..]` as a raw shard with the column set `input[0]` picks.
/// Returns the number of samples decoded, or the error; must never panic.
pub fn decode_shard_input(input: &[u8]) -> Result<usize, String> {
    let Some((&pick, shard)) = input.split_first() else {
        return Err("empty input".into());
    };
    let columns: Vec<Column> = COLUMN_SETS[pick as usize % COLUMN_SETS.len()]
        .iter()
        .map(|(name, enc)| Column {
            name: name.to_string(),
            encoding: Encoding::parse(enc).expect("fixed encodings parse"),
        })
        .collect();
    decode_shard(shard, &columns, |_, _| Ok(()))
        .map(|h| h.samples)
        .map_err(|(sample, e)| format!("sample {sample:?}: {e}"))
}
