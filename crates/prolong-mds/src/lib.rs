//! MDS v2 shards, byte-compatible with mosaicml-streaming in both directions:
//! [`MdsWriter`] writes what streaming's MDSWriter writes, [`MdsDataset`] reads
//! what it reads (plain, zstd, and merged roots), [`merge_index`] joins
//! sub-folders, [`verify`] checks every byte index.json vouches for.
//!
//! The format, byte by byte, is described in docs/mds-format.md.

mod atomic;
pub mod closed_stdout;
mod dtype;
mod encoding;
mod error;
mod error_line;
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod index;
mod merge;
pub mod pyjson;
mod reader;
mod shard;
mod value;
mod verify;
mod writer;

pub use atomic::{
    DirWrite, FileWrite, KILL_AT_WRITE_VAR, remove_all_stale_temps, remove_stale_temps, sync_dir,
    temp_path, write_atomic, write_atomic_dir, write_atomic_parts, write_atomic_path,
    write_atomic_with, write_step,
};
pub use dtype::Dtype;
pub use encoding::Encoding;
pub use error::{MdsError, Result};
pub use error_line::error_line;
pub use hash::{FileHashes, HashAlgo, check_hashes};
pub use index::{
    Column, Compression, FileInfo, INDEX_FILE, Index, MAX_SHARD_BYTES, ShardEntry, safe_relative,
};
pub use merge::merge_index;
pub use reader::{MdsDataset, Sample, read_shard_raw};
pub use shard::{ShardHeader, decode_shard, split_sample};
pub use value::{Array, Scalar, Value, cast_or_copy};
pub use verify::{SampleCheck, VerifyReport, verify, verify_with};
pub use writer::{DEFAULT_SIZE_LIMIT, MdsWriter, WriterOptions};
