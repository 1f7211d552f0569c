//! The trainer's data side: a [`Mixture`] of MDS streams with proportions and the
//! [`MixtureLoader`] that draws a stage's sequences from it.
//!
//! * [`Mixture`] — from a TOML manifest (`[[stream]]` tables with `path` and
//!   `proportion`) or ProLong's `path@proportion` arguments; validated up front.
//! * [`allocate`] — `floor(total × p)` per stream, the remainder one each to
//!   streams chosen by the seeded RNG (mosaicml-streaming's rule).
//! * [`MixtureLoader`] — seeded per-stream permutations (a fresh one per epoch
//!   when a stream is too small), a seeded interleaving of the streams, and a
//!   small [`LoaderState`] to resume exactly.
//!
//! It reads ProLong's released folders unchanged: merged roots with
//! `procNN-64/` sub-folders, `length` stored as `int`, `uint64` or absent,
//! optional `indices` and `mask`.

mod error;
mod loader;
mod mixture;
mod part;
pub mod rng;

pub use error::DataError;
pub use loader::{LoadedSequence, LoaderState, MixtureLoader};
pub use mixture::{Mixture, Stream, allocate};
