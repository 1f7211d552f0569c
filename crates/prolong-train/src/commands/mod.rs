//! The subcommands of the `prolong-train` binary.

pub mod forward;
pub mod launch;
pub mod plan;
pub mod train;
