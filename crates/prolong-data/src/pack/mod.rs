//! The pack stage: tokenized documents in, fixed-length sequences out, as
//! ProLong packed its data (docs/recipe.md, "Tokens and packing").
//!
//! - [`Packer`]: the algorithm, free of I/O (documents pushed one at a time,
//!   sequences handed to a callback; one N-token buffer per output subset).
//! - [`run_task`] / [`run_all`]: a `--rank R --world-size W` task over MDS
//!   inputs, writing `OUT/{subset}/procR-W/`, a stats file and a completion
//!   marker, and merging the root index.json once every task is done.
//!
//! Output columns: `domain` str (the subset name: "." without splitting,
//! `{target}-{N}` with it), `indices` ndarray:uint32 (n, 2), `input_ids`
//! ndarray:uint32 (N), `length` int, and `mask` ndarray:uint8 (N) when the
//! input has a mask (0 at the BOS/EOS the packer inserts, the input's mask
//! elsewhere).

mod error;
mod input;
mod options;
mod packer;
mod stats;
mod task;

pub use error::PackError;
pub use input::{InputDoc, InputShard, for_each_doc, plan_inputs};
pub use options::PackOptions;
pub use packer::{OwnedSequence, Packer, Sequence, le_u32s, pack_u32, u32s_le};
pub use stats::{Dropped, PackStats};
pub use task::{
    Progress, TaskRecord, TaskReport, merge_if_complete, read_all_stats, run_all, run_task,
};
