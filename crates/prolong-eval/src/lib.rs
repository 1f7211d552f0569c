//! Evaluation of long-context checkpoints.
