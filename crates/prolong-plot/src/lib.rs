//! The charts the ProLong tools write: prolong-train's `loss.svg` ([`loss`]),
//! `prolong-data stats --plot` ([`lengths`]), prolong-eval's `ppl.svg` ([`position`])
//! and recall heat map ([`recall`]), on shared pieces ([`svg`]).
//!
//! Each chart is hand-written SVG text rather than the output of a plotting library:
//! the same data gives the same bytes on every machine and in every version (the tests
//! compare charts byte for byte, and a rerun of a stage leaves its chart unchanged),
//! the files open in any browser, and the crate has no dependencies, so every tool can
//! draw without pulling in the others: prolong-data, prolong-train and prolong-eval
//! each depend on this crate, not on one another's.
//!
//! Charts take plain numbers (points, buckets, scores), not the tools' own types.

pub mod lengths;
pub mod loss;
pub mod position;
pub mod recall;
pub mod svg;
