//! A checkpoint written over one of the same name, killed at each of its write steps
//! (a child process: this test binary with `PROLONG_KILL_AT_WRITE`): the name holds a
//! whole checkpoint, the old or the new, at every point. The writer this replaced
//! removed the old folder and then renamed the new one into place, so a kill between
//! the two lost both; the atomic folder writer swaps the two names in one step, and
//! its kill point after the swap (the old folder not yet removed) is one this test
//! must reach.

#![cfg(test)]

use std::path::Path;

use candle_core::{DType, Device};

use super::checkpoint::{self, TrainerState};
use super::init::random_llama;
use crate::data::LoaderState;
use crate::optim::{AdamW, AdamWConfig};
use crate::stage::StageConfig;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The checkpoint folder the child writes (its path).
const CHILD_VAR: &str = "PROLONG_CHECKPOINT_TEST_CHILD";

/// Saves the checkpoint of step `step` (a 2-layer random model, fresh Adam state) to `dir`.
fn save(dir: &Path, step: u64) -> TestResult {
    let stage = StageConfig::parse(
        "[model.random]\nseed = 1\nlayers = 2\nhidden = 32\nheads = 4\nkv_heads = 2\nffn = 48\nvocab = 64\n\
         [data]\nstreams = [\"d\"]\nseq_len = 16\n\
         [train]\nsteps = 2\ntokens_per_step = 16\npeak_lr = 1e-3\nwarmup = 0.0\nseed = 3\n\
         [checkpoint]\nout = \"o\"\n",
        Path::new("test.toml"),
    )?;
    let random = stage.model.random.as_ref().ok_or("no [model.random]")?;
    let model = random_llama(&random.llama_config(), step, 0.02, DType::F32, &Device::Cpu)?;
    let opt = AdamW::new(AdamWConfig::default(), model.params())?;
    let loader = LoaderState {
        seed: 3,
        total_sequences: 2,
        position: step,
        allocation: vec![2],
        stream_samples: vec![4],
    };
    let mut state = TrainerState::fresh(&stage, loader, 1);
    (state.step, state.tokens, state.sequences) = (step, 16 * step, step);
    checkpoint::save(dir, &model, &opt, &state, u64::MAX)?;
    Ok(())
}

#[test]
#[ignore = "run by the kill test below in a child process"]
fn child_save() -> TestResult {
    let dir = std::env::var(CHILD_VAR).map_err(|_| "run by the kill test")?;
    save(Path::new(&dir), 2)
}

/// The step of the whole checkpoint at `dir` (its weights and optimizer state load).
fn whole_checkpoint_step(dir: &Path) -> TestResult<u64> {
    let state = checkpoint::load_state(dir)?;
    crate::model::Llama::load(dir, DType::F32, &Device::Cpu)?;
    let random = state
        .stage
        .model
        .random
        .as_ref()
        .ok_or("no [model.random]")?;
    let model = random_llama(&random.llama_config(), 0, 0.02, DType::F32, &Device::Cpu)?;
    let mut opt = AdamW::new(AdamWConfig::default(), model.params())?;
    checkpoint::load_optimizer(dir, &mut opt)?;
    Ok(state.step)
}

#[test]
fn a_checkpoint_killed_while_replacing_one_keeps_the_old_or_the_new() -> TestResult {
    use std::os::unix::process::ExitStatusExt;
    let root = tempfile::tempdir()?;
    let out = root.path().join("out");
    let dir = checkpoint::periodic_dir(&out, 2);
    let (mut old_kept, mut new_with_old_aside) = (0, 0);
    for n in 1.. {
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        save(&dir, 1)?;
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["--exact", "train::checkpoint_kill::child_save", "--ignored"])
            .env(CHILD_VAR, &dir)
            .env(prolong_mds::KILL_AT_WRITE_VAR, n.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        if status.success() {
            assert_eq!(whole_checkpoint_step(&dir)?, 2);
            // Each kill point of the write was tried: the folder's own 4 (before its
            // temporary, before the swap, after it, after the old one's removal) and
            // 3 for each of its 6 files.
            assert_eq!(n - 1, 4 + 3 * 6);
            break;
        }
        assert_eq!(status.signal(), Some(9), "write step {n}");
        let parent = dir.parent().ok_or("a checkpoint folder has a parent")?;
        let leftovers = std::fs::read_dir(parent)?.count() - 1;
        match whole_checkpoint_step(&dir)? {
            1 => old_kept += 1,
            2 if leftovers > 0 => new_with_old_aside += 1,
            _ => {}
        }
        // The next run's clean-up leaves the checkpoint alone and nothing else.
        checkpoint::remove_partial(&out)?;
        let names = std::fs::read_dir(parent)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<Vec<_>, _>>()?;
        let name = dir.file_name().ok_or("a checkpoint folder has a name")?;
        assert_eq!(names, [name], "write step {n}");
        assert_eq!(checkpoint::list(&out)?.len(), 1, "write step {n}");
    }
    assert!(
        old_kept > 0 && new_with_old_aside == 1,
        "{old_kept} {new_with_old_aside}"
    );
    Ok(())
}
