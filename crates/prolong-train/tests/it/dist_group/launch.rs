//! `prolong-train launch`: torchrun's environment and mpirun's ranks.

use super::{launch, mpirun_available};
#[cfg(not(feature = "mpi"))]
use super::{launch_train, tiny_recipe};
use std::process::Output;

fn sorted_lines(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn launch_env_gives_each_rank_torchruns_variables() {
    let out = launch(&["--nproc-per-node", "3", "--backend", "env", "--", "ranks"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        sorted_lines(&out),
        [
            "rank 0 of 3 (local rank 0)",
            "rank 1 of 3 (local rank 1)",
            "rank 2 of 3 (local rank 2)"
        ]
    );
}

/// One rank failing stops the launch with that rank's status.
#[test]
fn launch_env_reports_a_failed_rank() {
    let out = launch(&[
        "--nproc-per-node",
        "2",
        "--backend",
        "env",
        "--",
        "forward",
        "--model",
        "/nonexistent/model",
        "--batch",
        "/nonexistent/batch.safetensors",
        "--out",
        "/nonexistent/out.safetensors",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a rank of 2 failed with exit status 1"),
        "{err}"
    );
}

/// Without a multi-rank backend, N ranks must not each train the same data.
#[cfg(not(feature = "mpi"))]
#[test]
fn train_on_many_ranks_needs_the_mpi_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_recipe(tmp.path(), "a");
    let out = launch_train(2, true, &cfg);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("this build has no multi-rank backend"),
        "{err}"
    );
}

#[test]
fn launch_refuses_to_nest() {
    let out = launch(&["--", "launch", "--", "ranks"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot launch ranks"));
}

#[test]
fn launch_mpi_starts_mpi_ranks() {
    if !mpirun_available("launch_mpi_starts_mpi_ranks") {
        return;
    }
    let out = launch(&["--nproc-per-node", "2", "--", "ranks"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        sorted_lines(&out),
        ["rank 0 of 2 (local rank 0)", "rank 1 of 2 (local rank 1)"]
    );
}
