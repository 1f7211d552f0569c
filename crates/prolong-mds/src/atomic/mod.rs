//! Files and folders appear under their final name only once they are
//! complete: the one way this workspace writes its outputs.
//!
//! # The API
//!
//! | write                                   | use                                                                 |
//! |-----------------------------------------|---------------------------------------------------------------------|
//! | [`write_atomic`]`(path, bytes)`         | a file from bytes in memory (index.json, markers, stats, manifests) |
//! | [`write_atomic_parts`]`(path, parts)`   | a file from several slices back to back (shards)                    |
//! | [`write_atomic_with`]`(path, sync, f)`  | a file streamed through a `BufWriter` by `f` (large outputs)        |
//! | [`write_atomic_path`]`(path, f)`        | a file that a library writes to a path it is given (`f(tmp)`: candle's `safetensors::save`) |
//! | [`FileWrite`]`::begin(path)` … `write_at(offset, bytes)` … `commit()` | a file written in parts, in any order, over time (a checkpoint's safetensors file, tensor by tensor as each is gathered) |
//! | [`write_atomic_dir`]`(path, f)`         | a whole folder: `f(tmp)` fills a fresh empty folder (checkpoints, exported models) |
//! | [`DirWrite`]`::begin(path)` … `commit()` | a whole folder that several processes fill (sharded checkpoints: one begins, hands the others [`DirWrite::tmp`]'s name, commits after a barrier) |
//!
//! Every one of them, for the final name `DIR/NAME`:
//!
//! 1. removes what dead writers of `NAME` left in `DIR` ([`remove_stale_temps`]):
//!    their temporary files and folders, so a re-run after a kill leaves none;
//! 2. writes under a temporary name tagged with the writer, `DIR/.NAME.tmp.PID.N`
//!    ([`temp_path`]: process id and a per-process counter), so two writers
//!    of the same name never share a temporary and a live writer's temporary
//!    is never removed by another process;
//! 3. syncs the data (`fsync` of the file; for a folder, of every file and
//!    folder inside it), renames it to `DIR/NAME`, then syncs `DIR`, so that
//!    after the rename the name and the data survive a crash of the machine;
//! 4. on an error, removes its temporary and returns the error naming the path.
//!
//! A folder that already exists under the final name is replaced atomically:
//! on Linux the new folder and the old one swap names in one `renameat2`
//! (`RENAME_EXCHANGE`) and the old one, now under the writer's temporary name,
//! is removed after it; `DIR/NAME` is at every moment either the whole old
//! folder or the whole new one. Where the exchange is not available the old
//! folder is first renamed aside to `DIR/.NAME.old.PID.N`; a writer that
//! finds a dead writer's `.old` folder with no `DIR/NAME` renames it back
//! (the old folder is restored), otherwise removes it.
//!
//! A folder's own files can be written inside `f` with plain `std::fs`
//! calls or with the functions above (both are synced before the rename; the
//! functions above give kill tests their steps); its sub-folders are `f`'s to
//! create. An `f` that fails leaves nothing.
//!
//! [`remove_all_stale_temps`]`(dir)` removes every dead writer's leftovers in
//! `dir` whatever their names (for a folder whose names are not all written
//! again, such as a trainer's checkpoints folder on resume).
//!
//! Errors are [`MdsError`]; `write_atomic_path` and `write_atomic_dir` return
//! the closure's error type `E`, which must implement `From<MdsError>` (add an
//! `#[error(transparent)] Write(#[from] prolong_mds::MdsError)` variant to the
//! crate's error enum, as `prolong_train::Error` has).
//!
//! # Example: a checkpoint folder
//!
//! ```no_run
//! use prolong_mds::{MdsError, write_atomic, write_atomic_dir};
//! # fn save(dir: &std::path::Path) -> Result<(), MdsError> {
//! // `dir` (say out/checkpoints/step-0000100) appears whole or not at all; a
//! // folder already there is replaced in one step.
//! write_atomic_dir(dir, |tmp| {
//!     let opt = tmp.join("optimizer");
//!     std::fs::create_dir(&opt).map_err(|err| MdsError::Io { path: opt.clone(), err })?;
//!     write_atomic(&opt.join("state.json"), b"{}")?;
//!     write_atomic(&tmp.join("trainer_state.json"), b"{}")
//! })
//! # }
//! ```
//!
//! # Kill testing
//!
//! With `PROLONG_KILL_AT_WRITE=N` ([`KILL_AT_WRITE_VAR`]) in its environment,
//! a process sends itself SIGKILL when it reaches its N-th write step
//! ([`write_step`], counting from 1). Each file write has three steps: before
//! its temporary is created, after it is written and synced but before the
//! rename, and after the rename and the folder's sync. A folder write has
//! the same three, plus one after the old folder is removed when it replaces
//! one (the steps of the writes inside `f` come between the first and the
//! second). Writers that append instead (the trainer's metrics lines) call
//! [`write_step`] once per record. Kill tests choose their kill points by
//! this count, never by timing, so every point is reached on any machine
//! under any load.

mod dir;
mod file;
mod kill;
mod stale;
mod sync;
mod temp;
#[cfg(test)]
mod tests;

pub use dir::{DirWrite, write_atomic_dir};
pub use file::{FileWrite, write_atomic, write_atomic_parts, write_atomic_path, write_atomic_with};
pub use kill::{KILL_AT_WRITE_VAR, write_step};
pub use stale::{remove_all_stale_temps, remove_stale_temps};
pub use sync::sync_dir;
pub use temp::temp_path;
