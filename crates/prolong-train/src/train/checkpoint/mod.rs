//! Trainer checkpoints: everything needed to continue a stage bit for bit.
//!
//! ```text
//! DIR/config.json                    HF config (with the stage's rope_theta)
//! DIR/model.safetensors              weights, HF names, compute dtype (or sharded:
//!                                    model-0000i-of-0000N.safetensors + index)
//! DIR/optimizer/exp_avg.safetensors  Adam first moments, fp32, HF names
//! DIR/optimizer/exp_avg_sq.safetensors
//! DIR/optimizer/master.safetensors   fp32 master weights (only when compute dtype ≠ fp32)
//! DIR/optimizer/state.json           Adam's step count and hyper-parameters
//! DIR/trainer_state.json             step, loader state, RNG, metrics and held-out losses
//!                                    so far (written last)
//! ```
//!
//! With `[parallel] shard = "grad_op" | "full"` the optimizer folder holds instead each
//! rank's shard of the master weights and moments and an index (`dcp.rs`: world-size
//! independent, so a run resumes on any number of ranks), and rank 0 writes the HF
//! weights, gathered from the shards (with `full` one unit at a time: no rank ever
//! holds the whole model for a checkpoint), and the rest.
//!
//! A checkpoint folder is written by prolong_mds's atomic folder writer: filled under a
//! temporary name tagged with the writer (`.NAME.tmp.PID.N`), synced, then given its
//! name, replacing a folder of that name in one step (Linux swaps the two names; an old
//! folder renamed aside elsewhere is restored by the next writer if the new one never took
//! the name); so a killed run never leaves a folder that looks complete and is not, nor
//! loses the one it was replacing. Every file in it goes through the atomic file writer
//! (a kill point per write step for tests). A sharded checkpoint is one folder filled by
//! every rank: rank 0 begins it and hands the others its temporary name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::dcp::{self, Kind};
use super::init::InitRng;
use crate::data::LoaderState;
use crate::metrics::{EvalRecord, StepRecord};
use crate::model::Llama;
use crate::optim::AdamW;
use crate::stage::StageConfig;

mod ranks;
pub(super) use ranks::{load_optimizer_into, save_run};

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_DIR: &str = "optimizer";
const EXP_AVG: &str = "exp_avg.safetensors";
const EXP_AVG_SQ: &str = "exp_avg_sq.safetensors";
const MASTER: &str = "master.safetensors";
const OPT_STATE: &str = "state.json";

/// `trainer_state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainerState {
    pub format: u32,
    /// Optimizer steps done.
    pub step: u64,
    pub total_steps: u64,
    /// Tokens and sequences trained on so far, and their model FLOPs.
    pub tokens: u64,
    pub sequences: u64,
    pub flops: f64,
    /// Wall time spent training so far (all runs together).
    pub elapsed_s: f64,
    pub loader: LoaderState,
    /// The trainer's RNG (seeded from `train.seed`; nothing draws from it during training
    /// today, it is saved so that anything that does later resumes exactly).
    pub rng: InitRng,
    /// Matmul threads of the run (results are bit-identical only for the same count).
    pub threads: usize,
    pub stage: StageConfig,
    pub metrics: Vec<StepRecord>,
    /// Held-out evaluations so far (step 0 first).
    #[serde(default)]
    pub evals: Vec<EvalRecord>,
}

impl TrainerState {
    /// The state of `stage` before its first step, the loader at `loader`, with
    /// `threads` matmul threads.
    pub fn fresh(stage: &StageConfig, loader: LoaderState, threads: usize) -> Self {
        Self {
            format: 1,
            step: 0,
            total_steps: stage.train.steps,
            tokens: 0,
            sequences: 0,
            flops: 0.0,
            elapsed_s: 0.0,
            loader,
            rng: InitRng::new(stage.train.seed),
            threads,
            stage: stage.clone(),
            metrics: Vec::new(),
            evals: Vec::new(),
        }
    }
}

/// `optimizer/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimizerMeta {
    /// Adam's `t` (updates applied).
    pub step: u64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// HF names of the parameters that get weight decay.
    pub decay: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.into(),
        err: source,
    }
}

fn save_tensors(map: &HashMap<String, Tensor>, path: &Path) -> Result<(), TrainError> {
    dcp::write_tensors(path, map.iter().map(|(k, t)| (k.clone(), t)))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), TrainError> {
    let failed = |msg: String| TrainError::Checkpoint {
        path: path.into(),
        msg,
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| failed(e.to_string()))?;
    prolong_mds::write_atomic(path, text.as_bytes()).map_err(|e| failed(e.to_string()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, TrainError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
        path: path.into(),
        msg: e.to_string(),
    })
}

/// Writes a complete checkpoint to `dir` (atomically: see the module doc), the weights in
/// shards of at most `max_shard_bytes`.
pub fn save(
    dir: &Path,
    model: &Llama,
    opt: &AdamW,
    state: &TrainerState,
    max_shard_bytes: u64,
) -> Result<(), TrainError> {
    prolong_mds::write_atomic_dir(dir, |tmp| fill(tmp, model, opt, state, max_shard_bytes))
}

/// The files of a replicated checkpoint, into the empty folder `tmp`.
fn fill(
    tmp: &Path,
    model: &Llama,
    opt: &AdamW,
    state: &TrainerState,
    max_shard_bytes: u64,
) -> Result<(), TrainError> {
    model.save_sharded(tmp, max_shard_bytes)?;
    let odir = tmp.join(OPTIMIZER_DIR);
    std::fs::create_dir_all(&odir).map_err(io(&odir))?;
    let (m, v) = opt.moments();
    save_tensors(&m, &odir.join(EXP_AVG))?;
    save_tensors(&v, &odir.join(EXP_AVG_SQ))?;
    if model.dtype() != DType::F32 {
        save_tensors(&opt.masters(), &odir.join(MASTER))?;
    }
    let decay = opt
        .params
        .iter()
        .filter(|p| p.decay)
        .map(|p| p.name.clone());
    write_json(&odir.join(OPT_STATE), &meta(opt, decay.collect()))?;
    write_json(&tmp.join(STATE_FILE), state)
}

fn meta(opt: &AdamW, decay: Vec<String>) -> OptimizerMeta {
    let c = opt.config;
    OptimizerMeta {
        step: opt.step,
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weight_decay: c.weight_decay,
        decay,
    }
}

/// The replicated layout's files of each kind.
fn whole_files() -> [(Kind, &'static str); 3] {
    [
        (Kind::Master, MASTER),
        (Kind::ExpAvg, EXP_AVG),
        (Kind::ExpAvgSq, EXP_AVG_SQ),
    ]
}

fn read_meta(odir: &Path) -> Result<OptimizerMeta, TrainError> {
    if !odir.join(OPT_STATE).exists() {
        return Err(TrainError::Checkpoint {
            path: odir.into(),
            msg: "no optimizer state (model.keep_optimizer needs a stage checkpoint)".into(),
        });
    }
    read_json(&odir.join(OPT_STATE))
}

/// Loads the Adam moments, Adam's step count and (when saved) the fp32 master weights of
/// the checkpoint in `dir` into `opt`.
pub fn load_optimizer(dir: &Path, opt: &mut AdamW) -> Result<(), TrainError> {
    let odir = dir.join(OPTIMIZER_DIR);
    if !odir.join(OPT_STATE).exists() {
        return Err(TrainError::Checkpoint {
            path: odir,
            msg: "no optimizer state (model.keep_optimizer needs a stage checkpoint)".into(),
        });
    }
    let meta: OptimizerMeta = read_json(&odir.join(OPT_STATE))?;
    let load = |file: &str| -> Result<HashMap<String, Tensor>, TrainError> {
        let path = odir.join(file);
        candle_core::safetensors::load(&path, &candle_core::Device::Cpu).map_err(|e| {
            TrainError::Checkpoint {
                path: path.clone(),
                msg: e.to_string(),
            }
        })
    };
    let (mut m, mut v) = (load(EXP_AVG)?, load(EXP_AVG_SQ)?);
    opt.load_moments(&mut m, &mut v, meta.step)?;
    if odir.join(MASTER).exists() {
        opt.load_masters(&mut load(MASTER)?)?;
    }
    Ok(())
}

pub fn load_state(dir: &Path) -> Result<TrainerState, TrainError> {
    read_json(&dir.join(STATE_FILE))
}

/// Directory of the periodic checkpoint after `step`.
pub fn periodic_dir(out: &Path, step: u64) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step:07}"))
}

/// Every complete checkpoint under `out` (periodic ones and `final/`), as `(step, dir)`,
/// ascending by step (`final/` after a periodic one of the same step).
pub fn list(out: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let mut found = Vec::new();
    let ckpts = out.join("checkpoints");
    if ckpts.is_dir() {
        for entry in std::fs::read_dir(&ckpts).map_err(io(&ckpts))? {
            let entry = entry.map_err(io(&ckpts))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = name
                .strip_prefix("step-")
                .and_then(|n| n.parse::<u64>().ok())
                && entry.path().join(STATE_FILE).is_file()
            {
                found.push((n, 0, entry.path()));
            }
        }
    }
    let fin = out.join("final");
    if fin.join(STATE_FILE).is_file() {
        found.push((load_state(&fin)?.step, 1, fin));
    }
    found.sort();
    Ok(found.into_iter().map(|(s, _, p)| (s, p)).collect())
}

/// Removes leftovers of checkpoints that were being written when a run died: dead
/// writers' temporary folders (an old folder a dead writer had renamed aside comes
/// back under its name if the new one never took it), and the fixed-name `.NAME.tmp/`
/// folders of versions before tagged temporaries.
pub fn remove_partial(out: &Path) -> Result<(), TrainError> {
    for dir in [out.to_path_buf(), out.join("checkpoints")] {
        if !dir.is_dir() {
            continue;
        }
        prolong_mds::remove_all_stale_temps(&dir)?;
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
            }
        }
    }
    Ok(())
}
