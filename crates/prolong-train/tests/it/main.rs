//! Every integration test of prolong-train in one binary (one link instead of one per
//! file): each former `tests/NAME.rs` is the module `NAME`; the shared helpers
//! are modules of their own. Run one file's tests with `cargo test --test it NAME::`.

mod catalogue;
mod checkpoint;
mod common;
mod cuda_bench;
mod cuda_device;
mod cuda_ops;
mod cuda_train;
mod data_loader;
mod decode;
mod dist_env;
mod dist_group;
mod dist_slurm;
mod dist_ulysses;
mod dist_zero;
mod golden;
mod hf_interop;
mod model_gradcheck;
mod modules;
mod ops_gradcheck;
mod plan;
mod train_config;
mod train_data;
mod train_eval;
mod train_forward;
mod train_loop;
mod train_optim;
mod train_resume;
mod train_util;
