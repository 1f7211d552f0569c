//! Exact resume: `prolong-train train` killed with SIGKILL at every write step of a run
//! in turn (each step record, each micro-batch's backward, every file of the periodic
//! and final checkpoints, the metrics rewrite and the loss chart), then resumed, ends
//! with the same metrics, held-out losses, final weights, optimizer state and chart,
//! byte for byte, as an uninterrupted run, and leaves no temporary file behind.

use crate::train_util as util;

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

/// Runs the stage with `PROLONG_KILL_AT_WRITE=kill_at` (it kills itself with SIGKILL at
/// its `kill_at`-th write step, a point chosen by progress): whether it was killed
/// (`false`: it finished first).
fn run_and_kill(cfg: &Path, resume: bool, kill_at: u64) -> bool {
    let out = train(cfg, resume)
        .env(prolong_mds::KILL_AT_WRITE_VAR, kill_at.to_string())
        .output()
        .unwrap();
    match std::os::unix::process::ExitStatusExt::signal(&out.status) {
        Some(9) => true,
        _ => {
            assert!(
                out.status.success(),
                "write step {kill_at}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
    }
}

/// Files of a finished run that must be byte-identical to an uninterrupted run's.
const FINAL_FILES: [&str; 6] = [
    "final/model.safetensors",
    "final/config.json",
    "final/optimizer/exp_avg.safetensors",
    "final/optimizer/exp_avg_sq.safetensors",
    "final/optimizer/state.json",
    "loss.svg",
];

/// Every path under `dir` whose name marks it as temporary (`.NAME.tmp` folders of
/// checkpoints, `.NAME.tmp.PID.N` files of the atomic writer, `NAME.tmp` of weights).
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp") {
            found.push(e.path().display().to_string());
        }
        if e.file_type().unwrap().is_dir() {
            found.extend(temporaries(&e.path()));
        }
    }
    found
}

#[test]
fn killed_at_every_write_step_and_resumed_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    util::write_packed(&data, &util::random_samples(24, 64, 64, 11));
    // 4 steps of 2 micro-batches, a checkpoint after step 2, held-out losses at steps
    // 0, 3 and 4; the peak is given so that no run measures it.
    let recipe = |out: &Path| {
        util::recipe(&data, out, 64, 2, 4, 2, 64, 3e-3)
            + "\n[eval]\nsequences = 2\nevery = 3\n\n[device]\npeak_tflops = 1.0\n"
    };
    let a = tmp.path().join("a");
    let cfg_a = util::write(&tmp.path().join("a.toml"), &recipe(&a));
    let o = train(&cfg_a, false).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference = util::metrics_text(&a);
    assert_eq!(reference.len(), 4 + 3);

    let mut killed = 0;
    for at in 1.. {
        let out = tmp.path().join(format!("k{at}"));
        let cfg = util::write(&tmp.path().join(format!("k{at}.toml")), &recipe(&out));
        if !run_and_kill(&cfg, false, at) {
            break; // the run got past its last write step: every point was tried
        }
        killed += 1;
        // Every third point is killed twice: the resumed run dies at the same count of
        // its own write steps, and the next resume continues from there.
        if at % 3 == 0 {
            run_and_kill(&cfg, true, at);
        }
        let o = train(&cfg, true).output().unwrap();
        assert!(
            o.status.success(),
            "resume after write step {at}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            util::metrics_text(&out),
            reference,
            "killed at write step {at}"
        );
        for f in FINAL_FILES {
            assert!(
                std::fs::read(a.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(),
                "killed at write step {at}: {f} differs"
            );
        }
        assert_eq!(
            temporaries(&out),
            Vec::<String>::new(),
            "killed at write step {at}"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    eprintln!("{killed} kill points");
    assert!(killed >= 10, "only {killed} kill points");
}
