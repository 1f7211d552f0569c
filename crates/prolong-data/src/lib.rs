//! Corpus stages of the ProLong recipe: documents in, packed MDS out.
pub mod documents;
pub mod pack;
pub mod repos;
pub mod summary;
pub mod task;
pub mod tokenize;
