//! Ranks as users start them: `prolong-train launch` (torchrun's environment, or
//! mpirun), and the process group's collectives over real MPI ranks (feature
//! `mpi`; `make test` turns it on). MPI runs need Open MPI's `mpirun`: where it
//! is missing, those tests say they skipped.
//!
//! The MPI tests run this very test executable under `mpirun`, selecting the
//! ignored test `mpi_rank_body`: every rank computes what each collective must
//! give from the other ranks' (deterministic) inputs and checks it exactly.
//!
//! Modules: `launch` (the launcher's environments), `collectives` (each collective over
//! 2, 3 and 4 MPI ranks), `train` (data and sequence parallelism against one rank),
//! `resume` (sharded checkpoints killed and resumed, resharded), `plan` (the memory plan
//! against the shipped recipes and the measured peaks).

use crate::train_util as util;

use std::process::{Command, Output, Stdio};

#[cfg(feature = "mpi")]
mod collectives;
mod launch;
mod plan;
#[cfg(feature = "mpi")]
mod resume;
#[cfg(feature = "mpi")]
mod train;

const EXE: &str = env!("CARGO_BIN_EXE_prolong-train");

fn launch(args: &[&str]) -> Output {
    // Each mpirun gets its own session folder: two started at once by parallel tests
    // can otherwise fail in orte_init.
    let session = tempfile::tempdir().unwrap();
    Command::new(EXE)
        .arg("launch")
        .args(args)
        .env_remove("RANK")
        .env_remove("WORLD_SIZE")
        .env("TMPDIR", session.path())
        .output()
        .unwrap()
}

/// A recipe of a random tiny model on a small packed dataset (4 micro-batches a step).
fn tiny_recipe(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    if !data.exists() {
        util::write_packed(&data, &util::random_samples(40, 128, 64, 5));
    }
    let out = dir.join(name);
    util::write(
        &dir.join(format!("{name}.toml")),
        &util::recipe(&data, &out, 128, 4, 6, 0, 64, 3e-3),
    )
}

/// One process (no launcher, no rank variables) running `prolong-train train ARGS
/// --config cfg`, which must succeed.
#[cfg(feature = "mpi")]
fn train_alone(args: &[&str], cfg: &std::path::Path) -> Output {
    let o = Command::new(EXE)
        .arg("train")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("RANK")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// `launch --nproc-per-node n [--backend env] -- train --quiet --config cfg`.
fn launch_train(n: usize, env_backend: bool, cfg: &std::path::Path) -> Output {
    let n = n.to_string();
    let mut args = vec!["--nproc-per-node", &n];
    if env_backend {
        args.extend(["--backend", "env"]);
    }
    args.extend(["--", "train", "--quiet", "--config", cfg.to_str().unwrap()]);
    launch(&args)
}

/// `mpirun` when Open MPI is installed, else None (and the caller skips, saying so).
fn mpirun_available(test: &str) -> bool {
    let ok = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("{test}: skipped: no mpirun (install openmpi-bin, as `make test` does)");
    }
    ok
}

/// An MPI test's temporary folder; None, after saying that `test` skipped, where
/// there is no `mpirun`.
#[cfg(feature = "mpi")]
fn mpi_test_dir(test: &str) -> Option<tempfile::TempDir> {
    mpirun_available(test).then(|| tempfile::tempdir().unwrap())
}

/// `mpirun` with the flags every test needs (more ranks than cores; root in containers).
#[cfg(feature = "mpi")]
fn mpirun() -> Command {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "--bind-to", "none"]);
    if root {
        cmd.arg("--allow-run-as-root");
    }
    cmd
}

/// Each step's (loss, gradient norm), and every final weight by name, of a run.
#[cfg(feature = "mpi")]
pub(crate) type RunResult = (Vec<(f64, f64)>, Vec<(String, Vec<f32>)>);

/// The [`RunResult`] of the run in `out` (also the Slurm test's).
#[cfg(feature = "mpi")]
pub(crate) fn result(out: &std::path::Path) -> RunResult {
    let curve = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["loss"].as_f64().unwrap(),
                v["grad_norm"].as_f64().unwrap(),
            )
        })
        .collect();
    let weights = candle_core::safetensors::load(
        out.join("final/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut weights: Vec<(String, Vec<f32>)> = weights
        .into_iter()
        .map(|(k, t)| {
            let v = t
                .to_dtype(candle_core::DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            (k, v)
        })
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    (curve, weights)
}

/// `tiny_recipe` with `[parallel] shard = mode` and a checkpoint every `every` steps.
#[cfg(feature = "mpi")]
fn sharded_recipe(dir: &std::path::Path, name: &str, mode: &str, every: u64) -> std::path::PathBuf {
    let cfg = tiny_recipe(dir, name);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("every = 0", &format!("every = {every}"));
    util::write(&cfg, &format!("{text}\n[parallel]\nshard = \"{mode}\"\n"))
}

/// Both runs' losses and gradient norms within 1e-5 relative, every weight tensor within
/// 1e-5 of its norm.
#[cfg(feature = "mpi")]
fn assert_close(a: &RunResult, b: &RunResult, what: &str) {
    assert_eq!(a.0.len(), b.0.len(), "{what}: steps");
    for (step, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
        assert!(
            ((x.0 - y.0) / x.0).abs() < 1e-5,
            "{what}, step {step}: loss {x:?} vs {y:?}"
        );
        assert!(
            ((x.1 - y.1) / x.1).abs() < 1e-5,
            "{what}, step {step}: grad norm {x:?} vs {y:?}"
        );
    }
    assert_weights_close(&a.1, &b.1, what);
}

/// The same weight tensors (by name, in order) in `a` and `b`, each within 1e-5 of its
/// norm in `a` (the data-parallel tolerance of [`assert_close`]; also the Slurm test's).
#[cfg(feature = "mpi")]
pub(crate) fn assert_weights_close(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: tensors");
    for ((name_a, x), (name_b, y)) in a.iter().zip(b) {
        assert_eq!(name_a, name_b);
        let norm: f64 = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        let diff: f64 = x
            .iter()
            .zip(y)
            .map(|(p, q)| (*p as f64 - *q as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            diff <= 1e-5 * norm,
            "{what}: {name_a} differs by {diff} (norm {norm})"
        );
    }
}
