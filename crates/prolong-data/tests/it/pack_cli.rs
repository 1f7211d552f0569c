//! `prolong-data pack` end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/pack-golden")
        .join(name)
}

/// `prolong-data pack ARGS`: (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    common::run_cli(&[&["pack"], args].concat())
}

#[test]
fn pack_split_reproduces_the_reference_and_reruns_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("split");
    let input = golden("tokenized");
    let args = [
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--len",
        "1024",
        "--split-by-lengths",
        "256,1024",
        "--json",
    ];
    let (ok, stdout, err) = run(&args);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["merged"], true);
    assert_eq!(v["total"]["sequences"], 79);
    assert_eq!(v["tasks_run"], serde_json::json!(["proc0-1"]));
    for sub in ["256-1024", "1024-1024"] {
        let rel = format!("{sub}/proc0-1/shard.00000.mds");
        assert_eq!(
            std::fs::read(out.join(&rel)).unwrap(),
            std::fs::read(golden("packed-split-256-1024").join(&rel)).unwrap(),
            "{rel}"
        );
    }
    let (ok, stdout, err) = run(&args);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["tasks_skipped"], serde_json::json!(["proc0-1"]));
    assert_eq!(v["total"]["sequences"], 79);
}

#[test]
fn pack_by_rank_merges_after_the_last_task() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ranked");
    let input = golden("tokenized");
    let base = [
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--len",
        "512",
        "--min-length",
        "64",
    ];
    let mut a = base.to_vec();
    a.extend(["--rank", "1", "--world-size", "2"]);
    let (ok, stdout, err) = run(&a);
    assert!(ok, "{err}");
    assert!(stdout.contains("waiting for 1 more task"), "{stdout}");
    assert!(!out.join("index.json").exists());
    let mut b = base.to_vec();
    b.extend(["--rank", "0", "--world-size", "2"]);
    let (ok, stdout, err) = run(&b);
    assert!(ok, "{err}");
    assert!(stdout.contains("2 of 2 complete"), "{stdout}");
    assert!(
        stdout.contains("tokens   88356 in + 130 BOS/EOS"),
        "{stdout}"
    );
    let ds = prolong_mds::MdsDataset::open(&out).unwrap();
    assert!(ds.len() > 150);
}

#[test]
fn pack_reports_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = golden("packed-1024"); // no mask issue: packed data has input_ids too
    let (ok, _, err) = run(&[
        tmp.path().join("nothing").to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        "--len",
        "16",
    ]);
    assert!(!ok);
    assert!(err.contains("nothing"), "{err}");
    let (ok, _, err) = run(&[
        input.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        "--len",
        "0",
    ]);
    assert!(!ok);
    assert!(err.contains("sequence length"), "{err}");
}

#[test]
fn pack_all_tasks_in_one_process_or_from_slurm_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let input = golden("tokenized");
    let out = tmp.path().join("all");
    let (ok, stdout, err) = run(&[
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--len",
        "1024",
        "--world-size",
        "3",
        "--all",
        "--threads",
        "2",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["tasks_run"],
        serde_json::json!(["proc0-3", "proc1-3", "proc2-3"])
    );
    assert_eq!(v["merged"], true);

    let slurm = tmp.path().join("slurm");
    let output = Command::new(env!("CARGO_BIN_EXE_prolong-data"))
        .args([
            "pack",
            input.to_str().unwrap(),
            "--out",
            slurm.to_str().unwrap(),
        ])
        .args(["--len", "1024", "--json"])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    assert!(output.status.success());
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["tasks_run"], serde_json::json!(["proc1-2"]));
    assert_eq!(v["merged"], false);
}

/// `pack X --out X` on a flat dataset once overwrote X/index.json (D10): an
/// output that is an input, inside one or holding one is refused, and the
/// input is left as it was.
#[test]
fn pack_refuses_an_output_that_overlaps_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("tok");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(golden("tokenized")).unwrap() {
        let entry = entry.unwrap();
        std::fs::create_dir_all(&input).unwrap();
        std::fs::copy(entry.path(), input.join(entry.file_name())).unwrap();
        files.push(entry.file_name());
    }
    let before = common::files(&input);
    let input_str = input.to_str().unwrap();
    let inside = input.join("packed");
    let via_dots = tmp.path().join("tok/../tok");
    for (out, relation) in [
        (input_str, "is the input"),
        (via_dots.to_str().unwrap(), "is the input"),
        (inside.to_str().unwrap(), "is inside the input"),
        (tmp.path().to_str().unwrap(), "holds the input"),
    ] {
        let (ok, _, err) = run(&[input_str, "--out", out, "--len", "1024"]);
        assert!(!ok, "--out {out} was accepted");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(relation), "{err}");
    }
    assert!(common::files(&input) == before, "the input changed");
    assert!(!inside.exists());
}
