//! Sharded checkpoints: killed and resumed on the same world, resumed on another.

use super::{
    EXE, assert_close, launch, launch_train, mpi_test_dir, mpirun, result, sharded_recipe,
    train_alone, util,
};
use crate::common::sorted_names;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `n` MPI ranks training `cfg` (`--resume` when `resume`), rank `kill.0` with
/// `PROLONG_KILL_AT_WRITE = kill.1` (Open MPI's app contexts: one command line per rank).
fn mpirun_train(n: usize, cfg: &std::path::Path, resume: bool, kill: (usize, u64)) -> Output {
    let mut cmd = mpirun();
    for r in 0..n {
        if r > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", "1", "env"]);
        if r == kill.0 {
            cmd.arg(format!("{}={}", prolong_mds::KILL_AT_WRITE_VAR, kill.1));
        }
        cmd.args([EXE, "train", "--quiet", "--config", cfg.to_str().unwrap()]);
        if resume {
            cmd.arg("--resume");
        }
    }
    let session = tempfile::tempdir().unwrap();
    cmd.env("TMPDIR", session.path())
        .env_remove("RANK")
        .env_remove("WORLD_SIZE");
    // Open MPI ends the whole job when a rank dies, so waiting needs no time limit.
    cmd.output().unwrap()
}

/// `sharded_recipe(dir, name, mode, every)` trained by `ranks` ranks of the launcher,
/// which must succeed; the run's output folder.
fn launched(dir: &Path, name: &str, mode: &str, every: u64, ranks: usize) -> PathBuf {
    let o = launch_train(ranks, false, &sharded_recipe(dir, name, mode, every));
    assert!(o.status.success(), "{name}: {o:?}");
    dir.join(name)
}

/// `launch --nproc-per-node n -- train --quiet --resume --config cfg`.
fn launch_resume(n: usize, cfg: &std::path::Path) -> Output {
    let n = n.to_string();
    launch(&[
        "--nproc-per-node",
        &n,
        "--",
        "train",
        "--quiet",
        "--resume",
        "--config",
        cfg.to_str().unwrap(),
    ])
}

/// Sharded checkpoints, same world. A rank of 2 is killed with SIGKILL three times, at
/// points chosen by progress (each rank counts one point per micro-batch's backward,
/// three per file it writes, on rank 0 one per metrics record and three for the
/// checkpoint folder): first rank 0 at its 42nd point, inside the HF weights it writes
/// unit by unit into the step-4 checkpoint (both shards written, `model.safetensors`
/// written under its temporary name, not yet renamed); then, in a resumed run, rank 1 at its 6th point, inside its shard of the
/// step-4 checkpoint; each leaves the step-2 checkpoint the newest. Then, resumed again,
/// rank 1 at its 8th point, in the middle of step 5 (after its first micro-batch's
/// backward, past the step-4 checkpoint). Each time the job ends with Open MPI naming
/// the killed rank and no rank left waiting. The resumed run ends with the
/// uninterrupted run's metrics, HF weights and every shard of master weights and
/// moments, byte for byte.
#[test]
fn sharded_run_killed_mid_step_resumes_bit_identical() {
    let Some(tmp) = mpi_test_dir("sharded_run_killed_mid_step_resumes_bit_identical") else {
        return;
    };
    let a = launched(tmp.path(), "a", "full", 2, 2);
    let b = sharded_recipe(tmp.path(), "b", "full", 2);
    let out = tmp.path().join("b");
    let complete = |step: u64| {
        out.join(format!("checkpoints/step-{step:07}/trainer_state.json"))
            .is_file()
    };
    for (resume, kill, newest) in [(false, (0, 42), 2), (true, (1, 6), 2), (true, (1, 8), 4)] {
        let o = mpirun_train(2, &b, resume, kill);
        assert!(!o.status.success(), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("signal 9"), "no rank named as killed: {err}");
        // Rank 0 could not get past step 4 alone.
        assert_eq!(util::metrics_text(&out).len(), 4);
        assert!(
            complete(newest) && !complete(newest + 2),
            "newest checkpoint {newest}"
        );
        assert!(!out.join("final").exists());
        if kill.0 == 0 {
            // The step-4 checkpoint's temporary folder: both shards, the HF weights
            // being written.
            let tmp4 = std::fs::read_dir(out.join("checkpoints"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().contains(".step-0000004.tmp"))
                .expect("the step-4 checkpoint's temporary folder");
            for f in [
                "optimizer/shard-00001-of-00002.safetensors",
                "optimizer/shard-00002-of-00002.safetensors",
            ] {
                assert!(tmp4.join(f).is_file(), "{f}");
            }
            let names = sorted_names(&tmp4);
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with(".model.safetensors.tmp"))
                    && !names
                        .iter()
                        .any(|n| n == "model.safetensors" || n == "config.json"),
                "{names:?}"
            );
        }
    }
    let b = out;

    let o = launch_resume(2, &tmp.path().join("b.toml"));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(util::metrics_text(&a), util::metrics_text(&b));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("final/optimizer/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["world"], 2);
    // What `prolong-eval export` reads: config.json and the HF weights, consolidated.
    let model = prolong_train::Llama::load(
        b.join("final"),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.params().named().len(), result(&b).1.len());
    for f in [
        "final/model.safetensors",
        "final/optimizer/index.json",
        "final/optimizer/state.json",
        "final/optimizer/shard-00001-of-00002.safetensors",
        "final/optimizer/shard-00002-of-00002.safetensors",
    ] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

/// Resharding: the step-4 checkpoint of a 4-rank `grad_op` run, resumed on 2 ranks,
/// continues the 4-rank run: each new rank reads the overlapping ranges of the old
/// ranks' shard files. Steps 1-4 are the checkpoint's records (equal as text); steps 5
/// and 6 and the final weights equal the uninterrupted 4-rank run within the
/// data-parallel tolerance (same global batch, other order of the f32 sums), and the
/// data position, tokens and sequences are exactly the uninterrupted run's: no sample
/// skipped or repeated. The same across layouts: the sharded checkpoint resumed by one
/// replicated (`none`) rank, and a one-rank replicated checkpoint by 2 `full` ranks.
#[test]
fn sharded_checkpoint_resumes_on_another_world_size() {
    let Some(tmp) = mpi_test_dir("sharded_checkpoint_resumes_on_another_world_size") else {
        return;
    };
    let four = launched(tmp.path(), "four", "grad_op", 2, 4);
    let step4 = four.join("checkpoints/step-0000004");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(step4.join("optimizer/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["world"], 4);

    // Each resume: `ranks` ranks (0: one process, no launcher) in `mode` continue the
    // step-4 checkpoint of `from` and must end as `from` ended.
    let resume_from = |from: &std::path::Path, name: &str, mode: &str, ranks: usize| {
        let cfg = sharded_recipe(tmp.path(), name, mode, 2);
        let out = tmp.path().join(name);
        std::fs::create_dir_all(out.join("checkpoints")).unwrap();
        let copy = Command::new("cp")
            .arg("-r")
            .arg(from.join("checkpoints/step-0000004"))
            .arg(out.join("checkpoints"))
            .status()
            .unwrap();
        assert!(copy.success());
        let o = if ranks == 0 {
            train_alone(&["--resume"], &cfg)
        } else {
            launch_resume(ranks, &cfg)
        };
        assert!(o.status.success(), "{name}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("resumed from step 4"),
            "{o:?}"
        );
        assert_eq!(
            util::metrics_text(from)[..4],
            util::metrics_text(&out)[..4],
            "{name}"
        );
        assert_close(&result(from), &result(&out), name);
        let state = |out: &std::path::Path| -> serde_json::Value {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(out.join("final/trainer_state.json")).unwrap(),
            )
            .unwrap();
            serde_json::json!([v["tokens"], v["sequences"], v["loader"]])
        };
        assert_eq!(state(from), state(&out), "{name}");
    };
    resume_from(&four, "two", "grad_op", 2);
    // Across layouts: a replicated run reads the sharded checkpoint whole, and a sharded
    // run reads its pieces of a replicated (one-rank) checkpoint.
    resume_from(&four, "replicated", "none", 0);
    let one = sharded_recipe(tmp.path(), "one", "none", 2);
    train_alone(&["--quiet"], &one);
    resume_from(&tmp.path().join("one"), "sharded", "full", 2);
}

/// `full` on 2 ranks in bf16, the HF weights in files of at most 5000 bytes (several
/// files, boundaries inside decoder layers): rank 0 writes them as the units are
/// gathered one at a time, and they are the files the whole-model path
/// (`Llama::save_sharded`) writes from the same weights, byte for byte: each file, the
/// index and `config.json`. `prolong-eval export` and resume read them as before. The
/// held-out evaluations, forward through the units gathered one at a time on both
/// ranks, are those of a replicated run: at step 0 (the same weights) bit for bit.
#[test]
fn full_checkpoint_hf_files_are_the_whole_model_files() {
    let Some(tmp) = mpi_test_dir("full_checkpoint_hf_files_are_the_whole_model_files") else {
        return;
    };
    let recipe = |name: &str, mode: &str| {
        let cfg = sharded_recipe(tmp.path(), name, mode, 0);
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("[model]\n", "[model]\ndtype = \"bf16\"\n")
            .replace("every = 0", "every = 0\nmax_shard_size = \"5000\"");
        util::write(&cfg, &format!("{text}[eval]\nsequences = 2\nevery = 3\n"))
    };
    let o = launch_train(2, false, &recipe("bf16", "full"));
    assert!(o.status.success(), "{o:?}");
    train_alone(&["--quiet"], &recipe("one", "none"));
    let evals = |name: &str| -> Vec<String> {
        let m = std::fs::read_to_string(tmp.path().join(name).join("metrics.jsonl")).unwrap();
        m.lines()
            .filter(|l| l.contains("eval_loss"))
            .map(str::to_owned)
            .collect()
    };
    let (full, one) = (evals("bf16"), evals("one"));
    assert_eq!(full.len(), 3, "{full:?}"); // steps 0, 3, 6
    assert_eq!(full.len(), one.len());
    assert_eq!(full[0], one[0]);

    let fin = tmp.path().join("bf16/final");
    let whole = tmp.path().join("whole");
    let dtype = candle_core::DType::BF16;
    let model = prolong_train::Llama::load(&fin, dtype, &candle_core::Device::Cpu).unwrap();
    assert_eq!(model.dtype(), dtype);
    model.save_sharded(&whole, 5000).unwrap();
    let files = sorted_names(&whole);
    assert!(files.len() >= 5, "{files:?}"); // several weight files, the index, config
    assert!(!fin.join("model.safetensors").exists());
    for f in &files {
        let same = std::fs::read(fin.join(f)).unwrap() == std::fs::read(whole.join(f)).unwrap();
        assert!(same, "{f} differs");
    }
}
