//! Evaluation of long-context checkpoints (docs/recipe.md, "Evaluation").
//!
//! Modules:
//! * [`ppl`] — loss and perplexity on packed MDS sequences by position bucket;
//! * [`recall`] — HELMET's Recall category (JSON KV, RULER multi-key / multi-value
//!   needles) as generators and scorers (docs/eval-recall.md);
//! * [`export`] — a checkpoint as an HF model folder for transformers and HELMET.

pub mod export;
pub mod ppl;
pub mod recall;
