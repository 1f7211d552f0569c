//! The subcommands of the `prolong-train` binary.

pub mod forward;
pub mod train;
