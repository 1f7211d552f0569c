//! Corpus stages of the ProLong recipe: documents in, packed MDS out.
pub mod chat;
pub mod documents;
pub mod error;
pub mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod mix;
pub mod pack;
pub mod recipe;
pub mod repos;
pub mod sample;
pub mod stage;
pub mod summary;
pub mod task;
pub mod tokenize;

pub use error::StageError;
