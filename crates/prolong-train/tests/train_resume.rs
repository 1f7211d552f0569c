//! Exact resume: a run of the `prolong-train` binary killed with SIGKILL (twice, at
//! steps chosen by progress) and resumed gives the same loss curve, held-out losses and
//! byte-identical final weights and optimizer state as an uninterrupted run.

#[path = "train_util.rs"]
mod util;

use std::path::Path;
use std::process::{Command, Stdio};

fn train(cfg: &Path, resume: bool) -> Command {
    let mut c = Command::new(util::bin());
    c.args(["train", "--quiet", "--config"]).arg(cfg);
    if resume {
        c.arg("--resume");
    }
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

/// Runs the stage with `PROLONG_KILL_AT_WRITE=kill_at`: it kills itself with SIGKILL
/// right after the `kill_at`-th step record of this run reaches `metrics.jsonl` (the
/// trainer's one write step per optimizer step), a point chosen by progress.
fn run_and_kill(cfg: &Path, resume: bool, kill_at: u64) {
    let status = train(cfg, resume)
        .env(prolong_mds::KILL_AT_WRITE_VAR, kill_at.to_string())
        .status()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the run was not killed at its write step {kill_at}: {status}"
    );
}

/// Every record of metrics.jsonl (steps and held-out evaluations) without the
/// throughput, which differs run to run.
fn curve(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("tokens_per_s");
            v
        })
        .collect()
}

#[test]
fn killed_and_resumed_run_is_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    util::write_packed(&data, &util::random_samples(24, 256, 64, 11));
    let steps = 30;
    // with held-out evaluation every 7 steps: it must neither perturb nor be perturbed
    let recipe = |out: &Path| {
        util::recipe(&data, out, 256, 3, steps, 4, 64, 3e-3)
            + "\n[eval]\nsequences = 3\nevery = 7\n"
    };

    let a = tmp.path().join("a");
    let cfg_a = util::write(&tmp.path().join("a.toml"), &recipe(&a));
    let o = train(&cfg_a, false).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let b = tmp.path().join("b");
    let cfg_b = util::write(&tmp.path().join("b.toml"), &recipe(&b));
    // first kill after step 6 (between checkpoints 4 and 8); the resumed run starts
    // after step 4 and is killed after its 14th step (step 18); resume each time
    run_and_kill(&cfg_b, false, 6);
    run_and_kill(&cfg_b, true, 14);
    let o = train(&cfg_b, true).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (ca, cb) = (curve(&a), curve(&b));
    // The text too, up to the throughput (the last field): every logged value of the
    // resumed run is printed from the same f64 as the uninterrupted run's (issue: lr
    // 0.001950403260841024 vs 0.0019504032608410242 after a resume).
    let text = |out: &Path| -> Vec<String> {
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| l.split(",\"tokens_per_s\"").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(text(&a), text(&b));
    let evals = ca.iter().filter(|v| v.get("eval_loss").is_some()).count();
    assert_eq!((ca.len(), evals), (steps as usize + 6, 6)); // steps 0, 7, 14, 21, 28, 30
    assert_eq!(ca, cb);
    for f in [
        "final/model.safetensors",
        "final/optimizer/exp_avg.safetensors",
        "final/optimizer/exp_avg_sq.safetensors",
        "final/optimizer/state.json",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs");
    }
    // nothing half-written is left behind
    for dir in [b.clone(), b.join("checkpoints")] {
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{name}");
        }
    }
}
