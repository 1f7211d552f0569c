//! `prolong-data pack` end to end.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/pack-golden")
        .join(name)
}

/// `prolong-data pack INPUT --out OUT --len LEN MORE`: (success, stdout, stderr).
fn run(input: &Path, out: &Path, len: &str, more: &[&str]) -> (bool, String, String) {
    let (input, out) = (input.to_str().unwrap(), out.to_str().unwrap());
    common::run_cli(&[&["pack", input, "--out", out, "--len", len], more].concat())
}

#[test]
fn pack_split_reproduces_the_reference_and_reruns_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("split");
    let input = golden("tokenized");
    let args = ["--split-by-lengths", "256,1024", "--json"];
    let (ok, stdout, err) = run(&input, &out, "1024", &args);
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
    let (ok, stdout, err) = run(&input, &out, "1024", &args);
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
    let task = |rank| {
        run(
            &input,
            &out,
            "512",
            &["--min-length", "64", "--rank", rank, "--world-size", "2"],
        )
    };
    let (ok, stdout, err) = task("1");
    assert!(ok, "{err}");
    assert!(stdout.contains("waiting for 1 more task"), "{stdout}");
    assert!(!out.join("index.json").exists());
    let (ok, stdout, err) = task("0");
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
    let (ok, _, err) = run(
        &tmp.path().join("nothing"),
        &tmp.path().join("o"),
        "16",
        &[],
    );
    assert!(!ok);
    assert!(err.contains("nothing"), "{err}");
    let (ok, _, err) = run(&input, &tmp.path().join("o"), "0", &[]);
    assert!(!ok);
    assert!(err.contains("sequence length"), "{err}");
}

#[test]
fn pack_all_tasks_in_one_process_or_from_slurm_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let input = golden("tokenized");
    let out = tmp.path().join("all");
    let args = ["--world-size", "3", "--all", "--threads", "2", "--json"];
    let (ok, stdout, err) = run(&input, &out, "1024", &args);
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
    let inside = input.join("packed");
    let via_dots = tmp.path().join("tok/../tok");
    for (out, relation) in [
        (input.as_path(), "is the input"),
        (via_dots.as_path(), "is the input"),
        (inside.as_path(), "is inside the input"),
        (tmp.path(), "holds the input"),
    ] {
        let (ok, _, err) = run(&input, out, "1024", &[]);
        assert!(!ok, "--out {} was accepted", out.display());
        common::assert_error_line(&err, &[relation]);
    }
    assert!(common::files(&input) == before, "the input changed");
    assert!(!inside.exists());
}
